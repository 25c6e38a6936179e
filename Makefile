# scinit: build, test and compare container inits.
#   make docker-test   the container suite against every init, with the summary tables
#   make test          unit + process-level tests + the container suite against scinit
CARGO ?= cargo
STATIC := CARGO_TARGET_DIR=target/static CARGO_ENCODED_RUSTFLAGS=-Ctarget-feature=+crt-static
TARGET := x86_64-unknown-linux-gnu
# INIT_UNDER_TEST=/path/to/binary runs the suite against that binary, in INIT_PROFILE's dialect.
INITS ?= $(if $(INIT_UNDER_TEST),$(or $(INIT_PROFILE),scinit),scinit tini dumb-init catatonit docker-init)

.PHONY: all build deps docker-check unit-test test docker-test image bench-footprint clean-images

all: build

build:
	$(CARGO) build --release --locked

deps:
	@.ci/deps

docker-check:
	@.ci/docker-check

# Everything that needs no Docker: unit tests of every crate, the harness's own tests, and the
# process-level tests (scinit as a subreaper on the host).
unit-test: deps
	$(CARGO) test --locked --workspace --bins
	$(CARGO) test --locked --test process
	$(CARGO) test --locked --test integration -- --skip scenarios:: --skip performance::

test: unit-test docker-check
	tests/run-suite $(if $(INIT_UNDER_TEST),$(INITS),scinit)

docker-test: deps docker-check
	tests/run-suite $(INITS)

# The scinit test image, from the same recipe the suite uses (docker/Dockerfile.test).
image: deps docker-check
	$(STATIC) $(CARGO) build --release --locked --target $(TARGET) -p scinit -p scinit-testkit
	rm -rf target/image && mkdir -p target/image/rootfs/bin target/image/rootfs/tmp
	chmod 1777 target/image/rootfs/tmp
	cp target/static/$(TARGET)/release/scinit target/image/rootfs/init
	cp target/static/$(TARGET)/release/testkit /bin/busybox target/image/rootfs/bin/
	for a in $$(/bin/busybox --list); do [ "$$a" = busybox ] || ln -s busybox target/image/rootfs/bin/$$a; done
	docker build --network none -t scinit-test:latest -f docker/Dockerfile.test target/image

bench-footprint: deps docker-check
	rm -f target/test-results/records.jsonl
	$(CARGO) test --locked --test integration -- --test-threads 1 performance::footprint
	$(CARGO) run -q -p scinit-report -- target/test-results

# The suite keeps its content-tagged images as a cache; this removes them all.
clean-images: docker-check
	docker ps -aq --filter label=scinit.test | xargs -r docker rm -f
	docker images -q --filter label=scinit.test.image | sort -u | xargs -r docker rmi -f
