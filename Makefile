# scinit: build, test and compare container inits.
#   make docker-test   the container suite against every base init, with the summary tables
#   make test          unit + process-level tests + the container suite against scinit
#   make matrix        the scenarios against every init and mode, then docs/conformance.{md,html}
CARGO ?= cargo
# The flags of every static build, 0x1f between them (tests/support/target.rs says why each).
STATIC := CARGO_TARGET_DIR=target/static \
	CARGO_ENCODED_RUSTFLAGS="$$(printf '%s\037%s' -Ctarget-feature=+crt-static -Crelocation-model=static)"
# The machine's own target triple, as the suite's static build uses (tests/support/static_build.rs).
TARGET := $(shell rustc -vV | sed -n 's/^host: //p')
# The base inits of the init table (fixtures/inits.txt, `runs` = docker-test): one column per
# program, so that make docker-test stays short. INIT_UNDER_TEST=/path/to/binary runs the suite
# against that binary, following INIT_PROFILE's row.
INITS ?= $(if $(INIT_UNDER_TEST),$(or $(INIT_PROFILE),scinit),$(shell .ci/inits name docker-test))
# Every row of the init table: scinit and each peer in each of its modes (make matrix).
MATRIX_INITS ?= $(shell .ci/inits name)

.PHONY: all build deps docker-check unit-test test docker-test static matrix matrix-docs image bench repro bench-check bench-baseline bench-selftest clean-images

all: build

build:
	$(CARGO) build --release --locked

deps:
	@.ci/deps

docker-check:
	@.ci/docker-check

# Everything that needs no Docker: formatting, lints, unit tests of every crate, the harness's own
# tests, and the process-level tests (scinit as a subreaper on the host).
unit-test: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) test --locked --workspace --bins
	$(CARGO) test --locked --test process
	$(CARGO) test --locked --test repro -- --self-test
	$(CARGO) test --locked --test integration -- --skip scenarios:: --skip performance:: --skip suite_power::

test: unit-test docker-check
	tests/run-suite $(if $(INIT_UNDER_TEST),$(INITS),scinit)

docker-test: deps docker-check
	tests/run-suite $(INITS)

# The static binaries of images/binaries.txt (scinit, testkit, broken-init), built as the suite
# builds them (tests/support/static_build.rs), so that the suite finds them up to date. Needs
# glibc's static libraries (libc6-dev, see make deps).
static:
	$(STATIC) $(CARGO) build --release --locked --target $(TARGET) $(shell awk '/^[a-z]/ {printf " -p %s", $$1}' images/binaries.txt)

# The conformance table (tests/matrix, README "Conformance table"): the scenarios against every
# row of the init table, the peers in each of their modes, then docs/conformance.md and .html
# from the expected outputs that this green run has just confirmed, with the versions it ran
# (fixtures/peer-versions.txt). No suite-power tests or benchmarks: they are not in the table.
# A failing run writes nothing. matrix-docs regenerates the pages from the fixtures alone,
# without Docker (after an expected output was edited by hand).
matrix: deps docker-check
	SUITE_POWER=0 BENCHMARKS=0 tests/run-suite $(MATRIX_INITS)
	$(CARGO) run -q --locked -p scinit-matrix -- --record-versions

matrix-docs:
	$(CARGO) run -q --locked -p scinit-matrix

# The scinit test image, from the same recipe the suite uses (docker/Dockerfile.test).
image: deps docker-check static
	rm -rf target/image && mkdir -p target/image/rootfs/bin target/image/rootfs/tmp
	chmod 1777 target/image/rootfs/tmp
	cp target/static/$(TARGET)/release/scinit target/image/rootfs/init
	awk '/^[a-z]/' images/binaries.txt | while read -r package binary at; do \
		[ "$$at" = - ] || cp target/static/$(TARGET)/release/$$binary target/image/rootfs$$at; done
	cp /bin/busybox target/image/rootfs/bin/
	for a in $$(/bin/busybox --list); do [ "$$a" = busybox ] || ln -s busybox target/image/rootfs/bin/$$a; done
	docker build --network none -t scinit-test:latest -f docker/Dockerfile.test target/image

# The Docker-side benchmark (tests/bench/main.rs), one measurement at a time with nothing else on
# the engine: start, idle memory, stop, signal forwarding and orphan reaping of every init of the
# table as PID 1, and scinit's restarts under load. Writes target/test-results/performance.md and
# .json with their SVG plots, and appends one line to history.jsonl. About a minute and a half on
# two cores once the images are built.
bench: deps docker-check
	$(CARGO) test --locked --test bench

# A bug report reproduced without writing Rust (tests/repro/main.rs, README "Reproducing a
# bug"): SCRIPT as the child of each init of INITS (the base inits by default), SIGNALS sent at
# their times through the Docker API, DOCKER_ARGS' supported subset, each run ended TIMEOUT after
# the last signal (15 s by default). The values go through the environment, so that quotes in
# DOCKER_ARGS reach the program as they were typed.
repro: export REPRO_SCRIPT = $(SCRIPT)
repro: export REPRO_INITS = $(INITS)
repro: export REPRO_SIGNALS = $(SIGNALS)
repro: export REPRO_DOCKER_ARGS = $(DOCKER_ARGS)
repro: export REPRO_TIMEOUT = $(TIMEOUT)
repro: deps docker-check
	$(CARGO) test --locked --test repro -- --script "$$REPRO_SCRIPT" --inits "$$REPRO_INITS" \
		--signals "$$REPRO_SIGNALS" --docker-args "$$REPRO_DOCKER_ARGS" --timeout "$$REPRO_TIMEOUT"

# The performance gate, without Docker (bench/, README "Performance gate"): scinit's instruction
# counts under callgrind and its latency and memory as ratios to tini-static measured alongside,
# against fixtures/perf-baseline.json. bench-check fails when a figure is 10% or more worse (a
# ratio: and outside its noise band); its last line says which, and by how much. About 6 s
# once built. bench-baseline rewrites the baseline on purpose (with the date and the machine);
# bench-selftest builds scinit with one injected regression at a time and checks each is caught.
bench-check: deps
	$(CARGO) run -q --locked -p scinit-bench -- check

bench-baseline: deps
	$(CARGO) run -q --locked -p scinit-bench -- baseline

bench-selftest: deps
	$(CARGO) run -q --locked -p scinit-bench -- selftest

# The suite keeps its content-tagged images as a cache; this removes them all.
clean-images: docker-check
	docker ps -aq --filter label=scinit.test | xargs -r docker rm -f
	docker images -q --filter label=scinit.test.image | sort -u | xargs -r docker rmi -f
