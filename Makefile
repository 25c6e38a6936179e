# scinit: build, test and compare container inits.
#   make docker-test   the container suite against every init, with the summary tables
#   make test          unit + process-level tests + the container suite against scinit
CARGO ?= cargo
# The flags of every static build, 0x1f between them (tests/support/target.rs says why each).
STATIC := CARGO_TARGET_DIR=target/static \
	CARGO_ENCODED_RUSTFLAGS="$$(printf '%s\037%s' -Ctarget-feature=+crt-static -Crelocation-model=static)"
# The machine's own target triple, as the suite's static build uses (tests/support/static_build.rs).
TARGET := $(shell rustc -vV | sed -n 's/^host: //p')
# Every init of the init table (fixtures/inits.txt). INIT_UNDER_TEST=/path/to/binary runs the
# suite against that binary, following INIT_PROFILE's row.
INITS ?= $(if $(INIT_UNDER_TEST),$(or $(INIT_PROFILE),scinit),$(shell .ci/inits name))

.PHONY: all build deps docker-check unit-test test docker-test image bench bench-check bench-baseline bench-selftest clean-images

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
	$(CARGO) test --locked --test integration -- --skip scenarios:: --skip performance:: --skip suite_power::

test: unit-test docker-check
	tests/run-suite $(if $(INIT_UNDER_TEST),$(INITS),scinit)

docker-test: deps docker-check
	tests/run-suite $(INITS)

# The scinit test image, from the same recipe the suite uses (docker/Dockerfile.test).
image: deps docker-check
	$(STATIC) $(CARGO) build --release --locked --target $(TARGET) $(shell awk '/^[a-z]/ {printf " -p %s", $$1}' images/binaries.txt)
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
