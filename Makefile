# mlpipe: `make demo` runs the quickstart, `make test` runs every test.
GO       ?= go
BIN      := bin/mlpipe
# go-nvml's header warns about deprecated declarations; the flags are part of
# the build cache key, so every target uses the same ones.
export CGO_ENABLED := 1
export CGO_CFLAGS  := -O2 -g -Wno-deprecated-declarations
# Docker integration tests are built in; without a daemon they skip, unless
# MLPIPE_REQUIRE_DOCKER=1 (CI), where they fail.
TEST_TAGS ?= docker
TEST_TIMEOUT ?= 45m

.PHONY: build tools test test-security fuzz-short lint bench demo clean

build:
	$(GO) build -o $(BIN) ./cmd/mlpipe

# The real MinIO server the storage tests start: built once from the Go
# module proxy (about ten minutes on two cores) and cached under
# ~/.cache/mlpipe-tools/.
# Debian's chromium for the browser tests of `mlpipe ui` (installed with
# apt-get when missing and running as root; otherwise those tests skip).
tools:
	scripts/minio.sh path >/dev/null
	scripts/chromium.sh path >/dev/null || echo "make: no browser: the browser tests of mlpipe ui will skip"

test: build tools
	$(GO) vet -tags $(TEST_TAGS) ./...
	MLPIPE_BIN=$(CURDIR)/$(BIN) MLPIPE_MINIO_BIN="$$(scripts/minio.sh path)" \
		$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -tags $(TEST_TAGS) ./...
	$(MAKE) fuzz-short

# The security test group: every TestSecurity* test (hostile IR, escaping
# names, artifacts get, GPU lease files, step environment, limits, ...)
# and the short fuzz runs. `make test` runs all of it too.
test-security: build tools
	MLPIPE_BIN=$(CURDIR)/$(BIN) MLPIPE_MINIO_BIN="$$(scripts/minio.sh path)" \
		$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -tags $(TEST_TAGS) -run 'Security' ./...
	$(MAKE) fuzz-short

# Short fuzz runs of the security fuzz targets (their seed corpora are in
# testdata/fuzz/); run them longer by hand with FUZZTIME=10m.
FUZZTIME ?= 15s
fuzz-short:
	$(GO) test -run '^$$' -fuzz '^FuzzLoadIRNames$$' -fuzztime $(FUZZTIME) ./kfpir
	$(GO) test -run '^$$' -fuzz '^FuzzTaskRelDir$$' -fuzztime $(FUZZTIME) ./runner
	$(GO) test -run '^$$' -fuzz '^FuzzEscape$$' -fuzztime $(FUZZTIME) ./internal/termsafe
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./pyfunc
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./platform

lint:
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags $(TEST_TAGS) ./...
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/mlpipe

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./compiler/ ./bench/
	scripts/bench/compile.sh
	scripts/bench/dag.sh

demo: build
	$(BIN) run pipelines/quickstart --executor process
	$(BIN) runs show latest

clean:
	rm -rf bin
