# driftfs: a FUSE filesystem for a Drift account. See README.md.
VERSION := 0.1.0
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=

CC ?= cc
PKGS := fuse3 libcurl libcjson sqlite3
# driftctl links everything but FUSE (HACKING.md, Source code layout).
CTL_PKGS := libcurl libcjson sqlite3

# The libraries' flags come from a generated makefile, not from pkg-config
# at parse time: on a bare machine the first `make demo` or `make check`
# must install the packages (scripts/install-deps) before the flags can be
# read. make remakes an included makefile first, then reads itself again
# with the flags in place. Goals that build nothing skip it.
.DEFAULT_GOAL := all
NODEPS_GOALS := clean format demo-stop uninstall
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
include build/pkg.mk
endif

build/pkg.mk: scripts/install-deps Makefile
	@scripts/install-deps
	@mkdir -p build
	@pkg-config --exists $(PKGS) || { \
		echo "pkg-config finds no $(PKGS); run scripts/install-deps" >&2; \
		exit 1; }
	@{ echo "PKG_CFLAGS := $$(pkg-config --cflags $(PKGS))"; \
	   echo "PKG_LIBS := $$(pkg-config --libs $(PKGS))"; \
	   echo "CTL_PKG_LIBS := $$(pkg-config --libs $(CTL_PKGS))"; } >$@.tmp
	@mv $@.tmp $@

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wvla -Wno-format-nonliteral -Wno-format-truncation
ifeq ($(CI),true)
WARN += -Werror
endif
ifdef WERROR
WARN += -Werror
endif
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) -Iinclude $(PKG_CFLAGS) \
	-DDRIFTFS_VERSION='"$(VERSION)"' -D_GNU_SOURCE -pthread
LDLIBS := $(PKG_LIBS) -lm -pthread
CTL_LDLIBS := $(CTL_PKG_LIBS) -lm -pthread

ifdef SANITIZE
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
BUILD := build/san
else
BUILD := build/default
endif

# Where code lives decides what links it (HACKING.md, Source code layout):
# src/*.c is the library both programs share and knows nothing of FUSE;
# src/fs/ is the FUSE side and driftfs's main; src/driftctl/ is driftctl.
# A new file joins its layer by being in its directory.
CORE_SRCS := $(wildcard src/*.c)
FS_SRCS := $(filter-out src/fs/main.c,$(wildcard src/fs/*.c))
CTL_SRCS := $(wildcard src/driftctl/*.c)
HDRS := $(wildcard include/*.h src/*.h src/*/*.h)
CORE_OBJS := $(CORE_SRCS:src/%.c=$(BUILD)/obj/%.o)
FS_OBJS := $(FS_SRCS:src/%.c=$(BUILD)/obj/%.o)
CTL_OBJS := $(CTL_SRCS:src/%.c=$(BUILD)/obj/%.o)
# What the unit tests and fuzzers link: everything but the two mains.
LIB_OBJS := $(CORE_OBJS) $(FS_OBJS)
UNIT_TESTS := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))

all: $(BUILD)/driftfs driftfs $(BUILD)/driftctl driftctl

driftfs: $(BUILD)/driftfs
	ln -sf $(BUILD)/driftfs driftfs

driftctl: $(BUILD)/driftctl
	ln -sf $(BUILD)/driftctl driftctl

$(BUILD)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/driftfs: $(LIB_OBJS) $(BUILD)/obj/fs/main.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Without libfuse and without src/fs/: a FUSE symbol reached from driftctl
# fails this link.
$(BUILD)/driftctl: $(CORE_OBJS) $(CTL_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(CTL_LDLIBS)

$(BUILD)/test_%: tests/unit/test_%.c $(wildcard tests/unit/*.h) $(LIB_OBJS)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(LIB_OBJS) \
		$(LDLIBS)

deps:
	@scripts/install-deps

unit: $(UNIT_TESTS:%=$(BUILD)/%)
	@fail=0; for t in $^; do $$t || fail=1; done; exit $$fail

# The layout's rules (HACKING.md, Source code layout): no include cycle,
# FUSE only in src/fs/, Drift endpoints only in src/api*.c.
check-layers:
	@scripts/check-layers

# The pytest suites run TEST_JOBS tests at once (pytest-xdist): most of a
# mount test's time is spent waiting on timers and the emulator, so four
# fit two cores (9 minutes serial, 3 with four). TEST_JOBS=0: one at a time,
# in pytest's own process. Under valgrind each daemon keeps a core busy,
# hence VALGRIND_JOBS.
TEST_JOBS ?= 4
VALGRIND_JOBS ?= 3

check: deps check-layers all unit fuzz-short
	DRIFTFS=$(CURDIR)/$(BUILD)/driftfs DRIFTCTL=$(CURDIR)/$(BUILD)/driftctl \
		/usr/bin/python3 -m pytest -q -n $(TEST_JOBS) --durations=20 \
		-p no:cacheprovider tests/emulator tests/mount tests/driftctl

# Fuzzing (HACKING.md, Fuzzing): the library built again with clang,
# libFuzzer, ASan and UBSan, one harness per parser.
FUZZ_CC ?= clang
FUZZ_BUILD := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 -g -O1 $(FUZZ_SAN) -Iinclude $(PKG_CFLAGS) \
	-DDRIFTFS_VERSION='"$(VERSION)"' -D_GNU_SOURCE -pthread
FUZZ_LIB_OBJS := $(LIB_OBJS:$(BUILD)/obj/%=$(FUZZ_BUILD)/obj/%)

$(FUZZ_BUILD)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h \
		$(wildcard tests/unit/*.h) $(FUZZ_LIB_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Itests/fuzz -o $@ $< \
		$(FUZZ_LIB_OBJS) $(LDLIBS)

# Built by a pattern for a pattern: keep them between runs.
.SECONDARY: $(FUZZ_LIB_OBJS)

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

# Each harness for FUZZ_SECONDS; new inputs go to build/fuzz/corpus/.
fuzz:
	@scripts/fuzz probe "$(FUZZ_CC)" "make fuzz"
	@$(MAKE) --no-print-directory fuzz-build
	@scripts/fuzz run $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The seed corpus plus FUZZ_RUNS (50000) inputs per harness, seed 1, so
# the same inputs each time (make check).
fuzz-short:
	@if scripts/fuzz probe "$(FUZZ_CC)" "SKIP fuzz-short"; then \
		$(MAKE) --no-print-directory fuzz-build && \
		scripts/fuzz short $(FUZZ_BUILD) $(FUZZ_TARGETS); \
	fi

# The mount tests with the daemon under valgrind: a memory error or a
# definite leak in any of them fails that test (tests/helpers.py reads
# each daemon's valgrind log at unmount).
VALGRIND := valgrind --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite \
	--num-callers=30

check-valgrind: deps all
	DRIFTFS=$(CURDIR)/$(BUILD)/driftfs DRIFTCTL=$(CURDIR)/$(BUILD)/driftctl \
		DRIFTFS_WRAPPER="$(VALGRIND)" /usr/bin/python3 -m pytest -q \
		-n $(VALGRIND_JOBS) --durations=20 \
		-p no:cacheprovider tests/mount

demo: deps all
	@scripts/demo start $(MNT)

demo-stop:
	@scripts/demo stop $(MNT)

bench: deps all
	@scripts/install-deps bench
	@scripts/bench

# The convergence scenario (tests/convergence.py) seed after seed on one
# mount for SOAK_SECONDS (default 1800), reporting RSS, open fds and error
# lines over time, with a verdict (scripts/soak says which knobs it takes).
soak: deps all
	DRIFTFS=$(CURDIR)/$(BUILD)/driftfs DRIFTCTL=$(CURDIR)/$(BUILD)/driftctl \
		scripts/soak

UNITDIR ?= $(PREFIX)/lib/systemd/user
DOCDIR ?= $(PREFIX)/share/doc/driftfs
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions

# updatedb has no drop-in directory: the exclusion is a snippet to merge
# into /etc/updatedb.conf by hand (see the file), installed with the docs.
# The unit's ExecStart names BINDIR, so it must be absolute (systemd
# refuses a relative command) and plain: systemd reads % as a specifier
# and splits at blanks, sed reads & and |. Checked before anything is
# installed.
install: all
	@case '$(BINDIR)' in /*) ;; *) echo "make install:" \
		"BINDIR '$(BINDIR)' (PREFIX '$(PREFIX)') must be absolute" >&2; \
		exit 1;; esac
	@case '$(BINDIR)' in *[!A-Za-z0-9/._+-]*) echo "make install:" \
		"BINDIR '$(BINDIR)' may hold only letters, digits and" \
		"/ . _ + - (it goes into the systemd unit)" >&2; exit 1;; esac
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 755 $(BUILD)/driftfs $(DESTDIR)$(BINDIR)/driftfs
	install -m 755 $(BUILD)/driftctl $(DESTDIR)$(BINDIR)/driftctl
	install -m 644 man/driftfs.1 $(DESTDIR)$(MANDIR)/man1/driftfs.1
	install -m 644 man/driftctl.1 $(DESTDIR)$(MANDIR)/man1/driftctl.1
	# The unit runs the driftfs installed here, wherever BINDIR is.
	sed 's|@BINDIR@|$(BINDIR)|g' scripts/driftfs@.service.in \
		>$(DESTDIR)$(UNITDIR)/driftfs@.service
	chmod 644 $(DESTDIR)$(UNITDIR)/driftfs@.service
	install -m 644 scripts/driftctl.bash-completion \
		$(DESTDIR)$(BASHCOMPDIR)/driftctl
	install -m 644 scripts/driftctl.zsh-completion \
		$(DESTDIR)$(ZSHCOMPDIR)/_driftctl
	install -m 644 scripts/updatedb-driftfs.conf \
		$(DESTDIR)$(DOCDIR)/updatedb-driftfs.conf

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/driftfs $(DESTDIR)$(MANDIR)/man1/driftfs.1 \
		$(DESTDIR)$(BINDIR)/driftctl $(DESTDIR)$(MANDIR)/man1/driftctl.1 \
		$(DESTDIR)$(UNITDIR)/driftfs@.service \
		$(DESTDIR)$(DOCDIR)/updatedb-driftfs.conf \
		$(DESTDIR)$(BASHCOMPDIR)/driftctl $(DESTDIR)$(ZSHCOMPDIR)/_driftctl

format:
	clang-format -i src/*.c src/*.h src/*/*.c src/*/*.h include/*.h tests/unit/*.c tests/unit/*.h

clean:
	rm -rf build driftfs driftctl

.PHONY: all deps unit check check-layers check-valgrind fuzz fuzz-build fuzz-short demo demo-stop bench soak install uninstall format \
	clean
