// Package pywheel writes pure-Python wheels and PEP 503 "simple" package
// indexes without network access or Python tooling, for tests that need
// pip to install something offline.
//
// [Write] builds a PEP 427 wheel (py3-none-any) from in-memory files;
// [WriteIndex] turns a directory of wheels into a layout that works both as
// pip's --find-links directory and, served by [net/http.FileServer], as
// --index-url http://host/simple.
//
// [KFP] returns a small stand-in for the kfp Python package's runtime:
// enough of kfp.dsl (component decorator, Input/Output, InputPath/OutputPath,
// artifact classes, get_uri) and of kfp.dsl.executor_main to run KFP SDK
// "lightweight Python components" with the ExecutorInput/ExecutorOutput
// contract of the real executor. [Component] renders the command and args
// the SDK compiles such a component to.
package pywheel
