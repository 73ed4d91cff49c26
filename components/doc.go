// Package components holds mlpipe's example components, the layout users
// copy: components/<name>/ with component.yaml, Dockerfile, component.py
// and tests. Each component.yaml runs its component.py inlined in the
// command (python3 -c), so the same file works with the process executor,
// in the component's image and on a KFP cluster; `go test ./components
// -update` regenerates the inlined source and the shared helpers from
// component.py and kfpio.py.
package components
