package main

import (
	"errors"

	"github.com/mlpipe/mlpipe/compiler"
	"github.com/mlpipe/mlpipe/runner"
)

// dockerExecutor returns the Docker executor (the Docker issue).
func (a *app) dockerExecutor(ir *compiler.IR) (runner.Executor, error) {
	return nil, errors.New("the Docker executor is not available yet")
}
