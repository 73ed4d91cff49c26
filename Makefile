# mlpipe: `make demo` runs the quickstart, `make test` runs every test.
GO       ?= go
BIN      := bin/mlpipe
# go-nvml's header warns about deprecated declarations; the flags are part of
# the build cache key, so every target uses the same ones.
export CGO_ENABLED := 1
export CGO_CFLAGS  := -O2 -g -Wno-deprecated-declarations

.PHONY: build test lint bench demo clean

build:
	$(GO) build -o $(BIN) ./cmd/mlpipe

test: build
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

lint:
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./compiler/

demo: build
	$(BIN) compile pipelines/quickstart -o /tmp/mlpipe-quickstart.yaml
	$(BIN) plan pipelines/quickstart

clean:
	rm -rf bin
