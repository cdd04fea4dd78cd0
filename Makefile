# rocketsim: the two commands are `make run` (main job) and `make test` (everything CI checks).
# Third-party inputs come from Debian packages, cached in $(CACHE); builds live in build*/.

SHELL := /bin/bash
PY := /usr/bin/python3
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/rocketsim
export ROCKETSIM_CACHE := $(CACHE)
BUILD := build
ASAN := build-asan
ROCKETSIM := $(BUILD)/tools/rocketsim/rocketsim
FUZZ_SECONDS ?= 600

.PHONY: all help deps build build-asan qemu kernel driver guest rootfs board shell test test-unit \
	test-asan test-arm64 test-isa test-py test-mesa-teflon bench timing fuzz run qemu-asan \
	test-asan-qemu soak

all: build

help:
	@echo "make run      MobileDet through Teflon on the emulated board (ARGS=\"--help\")"
	@echo "make test     install build deps, build, run C unit, sanitizer and pytest suites"
	@echo "make qemu     qemu-system-aarch64 with rk3588-npu (Debian's QEMU source, cached)"
	@echo "make kernel   guest Linux 7.2 (Debian's linux-source) with rocket as a module"
	@echo "make driver   rebuild just rocket.ko (KERNEL_SRC=/path for your own tree) + initramfs"
	@echo "make rootfs   guest initramfs from Debian arm64 packages + our guest programs"
	@echo "make shell    boot the emulated board with a shell on the console"
	@echo "make bench    core speed: MobileDet layers, other precisions' matmuls, LUT, EW, PPU;"
	@echo "              last core-bench GMAC/s (MobileDet)"
	@echo "make timing   MobileNetV1/MobileDet times under -icount beside board figures"
	@echo "make fuzz     libFuzzer on the core, then on the QEMU device, FUZZ_SECONDS each (600)"
	@echo "make qemu-asan  qemu-system-aarch64 under ASan+UBSan (build/qemu-asan, ~15 min)"
	@echo "make test-asan-qemu  the QEMU device suites and the soak's boots on build/qemu-asan"
	@echo "make soak     1000 MobileDet inferences, 3 processes, and a snapshot mid-inference"
	@echo "make test-mesa-teflon  every case of Mesa's test_teflon on the board (MESA_TEFLON=filter)"
	@echo "make bundle   the guest programs as a self-contained arm64 bundle for a real board"
	@echo "make test-board BOARD=root@host[:port]  the guest-side suites on a real board over SSH"
	@echo "              (BOARD=emulated: the emulated board serving SSH; CI=1: the short run)"

deps:
	@scripts/host-deps

qemu: deps
	@scripts/build-qemu

# clang, ASan+UBSan, edge counters in the device's files (for fuzz-qemu); ~15 min on 2 cores
qemu-asan: deps
	@scripts/build-qemu asan

build: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) --buildtype=debugoptimized >/dev/null
	@ninja -C $(BUILD) | grep -v '^ninja: no work to do' || true
	@test -x $(BUILD)/qemu-hw/tools/rknpu-run -a -x $(ROCKETSIM)

build-asan: deps
	@[ -f $(ASAN)/build.ninja ] || meson setup $(ASAN) --buildtype=debug \
	    -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@ninja -C $(ASAN) | grep -v '^ninja: no work to do' || true

test-unit: build
	meson test -C $(BUILD) --print-errorlogs

# The core and its tests under ASan+UBSan; any report aborts the test.
test-asan: build-asan
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 meson test -C $(ASAN) --print-errorlogs

kernel: deps
	@scripts/build-kernel

driver: deps
	@scripts/build-kernel driver
	@userspace/mkrootfs

guest: kernel
	@scripts/build-guest

rootfs: kernel guest
	@userspace/mkrootfs

board: qemu rootfs

# The build steps run with stdin from /dev/null so that none of them reads what is typed for
# the guest's shell.
shell:
	@$(MAKE) --no-print-directory build board </dev/null
	@$(ROCKETSIM) shell $(ARGS)

test-py: build board bundle
	RKNPU_RUN=$(CURDIR)/$(BUILD)/qemu-hw/tools/rknpu-run $(PY) -m pytest sim-tests \
	    -q -p no:cacheprovider --junitxml=$(BUILD)/pytest.xml

# The core's C tests cross-built for arm64 and run under qemu-user, once on each NEON kernel path
# (scripts/test-arm64 --numerics adds sim-tests' numerics on each).
test-arm64:
	@scripts/test-arm64 $(BUILD)/arm64

# sim-tests' numerics again on every lesser kernel path the host runs (RKNPU_ISA=avx2, ...)
test-isa: build
	@scripts/test-isa $(BUILD)

test: test-unit test-asan test-arm64 test-isa test-py
	@$(PY) scripts/test-summary $(BUILD) $(ASAN)

# Every case of Mesa's own test_teflon (4210) on the emulated board, or those a gtest filter picks
# (MESA_TEFLON='DepthwiseConv2D.*'); `make test` runs a slice. Verdicts in Mesa's CI syntax:
# build/mesa-teflon-results-all.txt.
MESA_TEFLON ?= all
test-mesa-teflon: board
	ROCKETSIM_MESA_TEFLON='$(MESA_TEFLON)' $(PY) -m pytest sim-tests/test_mesa_teflon.py \
	    -q -s -p no:cacheprovider

# The guest programs, their Debian libraries and loader, Teflon and the models as one arm64
# folder for a real board (build/bundle/rocketsim-arm64, and .tar.gz). TEFLON=/path/libteflon.so,
# ROCKET_INFER=, ROCKET_SMOKE=: a developer's own builds, here and in the emulated board's image.
.PHONY: bundle test-board
bundle: build rootfs
	@scripts/make-bundle

# The guest-side suites on a board over SSH (README "On a real board"); BOARD=emulated runs them
# against the emulated board serving SSH, as make test does (CI=1: the short run).
BOARD ?=
test-board: build bundle
	@[ -n "$(BOARD)" ] || { echo "make test-board BOARD=root@host[:port] (or BOARD=emulated)"; exit 2; }
	@if [ "$(BOARD)" = emulated ]; then \
	    $(PY) sim-tests/sshboard.py $(if $(CI),--ci) -- $(BOARD_ARGS); \
	else \
	    $(PY) -m pytest sim-tests -p no:cacheprovider --board='$(BOARD)' $(if $(CI),--board-ci) \
	        --junitxml=$(BUILD)/board/pytest.xml $(BOARD_ARGS); \
	fi

bench: build
	@$(ROCKETSIM) bench --build $(BUILD) $(ARGS)

# Emulated inference times under -icount beside the published board figures.
timing: build board
	@$(ROCKETSIM) timing

# libFuzzer on the core (fuzz-core.c), then on the whole QEMU device over qtest (fuzz-qemu.c:
# coverage feedback from build/qemu-asan when it is built, `make qemu-asan`), FUZZ_SECONDS each;
# findings in build-fuzz/crash-* and build-fuzz/qemu-crash-* (seeds: make-fuzz-seeds.py there).
FUZZ_QEMU ?= $(if $(wildcard $(BUILD)/qemu-asan),$(BUILD)/qemu-asan,$(BUILD)/qemu-system-aarch64)
fuzz: deps qemu
	@mkdir -p build-fuzz/corpus build-fuzz/corpus-qemu
	clang -g -O2 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -DRN_LIBFUZZER -Iqemu-hw/core qemu-hw/core/*.c qemu-hw/tests/fuzz-core.c \
	    -o build-fuzz/fuzz-core
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Iqemu-hw/core qemu-hw/tests/fuzz-qemu.c \
	    -o build-fuzz/fuzz-qemu
	build-fuzz/fuzz-core -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -dict=qemu-hw/tests/fuzz-core.dict -artifact_prefix=build-fuzz/ build-fuzz/corpus \
	    qemu-hw/tests/fuzz-seeds
	ROCKETSIM_QEMU=$(FUZZ_QEMU) build-fuzz/fuzz-qemu -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=65536 -timeout=120 -print_final_stats=1 -artifact_prefix=build-fuzz/qemu- \
	    build-fuzz/corpus-qemu qemu-hw/tests/fuzz-qemu-seeds

# The QEMU device suites (test_qemu_device, test_attacks) and the soak's boots (test_soak, short)
# on the sanitizer build; any ASan report, or UBSan in the device, fails it. Not in `make test`.
test-asan-qemu: qemu-asan build board
	@$(PY) scripts/test-asan-qemu

# Soak: SOAK MobileDet inferences from three guest processes on the three NPU cores in one boot
# (outputs identical, no kernel warning, QEMU RSS flat), and a snapshot mid-inference restored to
# the same detections (sim-tests/test_soak.py; make test runs it with 30); figures: build/soak.json
SOAK ?= 1000
soak: board
	ROCKETSIM_SOAK=$(SOAK) $(PY) -m pytest sim-tests/test_soak.py -q -s -p no:cacheprovider

# The main job: MobileDet through Mesa Teflon on the emulated NPU (ARGS="--image coffee" etc.).
run: build board
	@$(ROCKETSIM) run $(ARGS)
