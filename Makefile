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

.PHONY: build tools test lint bench demo clean

build:
	$(GO) build -o $(BIN) ./cmd/mlpipe

# The real MinIO server the storage tests start: built once from the Go
# module proxy (about ten minutes on two cores) and cached under
# ~/.cache/mlpipe-tools/.
tools:
	scripts/minio.sh path >/dev/null

test: build tools
	$(GO) vet -tags $(TEST_TAGS) ./...
	MLPIPE_BIN=$(CURDIR)/$(BIN) MLPIPE_MINIO_BIN="$$(scripts/minio.sh path)" \
		$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -tags $(TEST_TAGS) ./...

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
