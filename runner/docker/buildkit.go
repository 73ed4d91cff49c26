package docker

import (
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// BuildKit reports a build's progress through the Engine API as
// "moby.buildkit.trace" messages whose aux is a protobuf StatusResponse of
// BuildKit's control API:
//
//	message StatusResponse { repeated Vertex vertexes = 1; repeated VertexStatus statuses = 2;
//	                         repeated VertexLog logs = 3; repeated VertexWarning warnings = 4; }
//	message Vertex    { string digest = 1; repeated string inputs = 2; string name = 3; bool cached = 4;
//	                    Timestamp started = 5; Timestamp completed = 6; string error = 7; }
//	message VertexLog { string vertex = 1; Timestamp timestamp = 2; int64 stream = 3; bytes msg = 4; }
//	message VertexWarning { string vertex = 1; int64 level = 2; bytes short = 3; ... }
//
// buildkitTrace turns them into the plain lines the legacy builder would
// print: each step's name once it starts, the output of its commands,
// CACHED and errors. Only these few fields are read (protowire), so that
// mlpipe does not link BuildKit for its progress.
type buildkitTrace struct {
	started map[string]bool
	ended   map[string]bool
	names   map[string]string
}

func newBuildkitTrace() *buildkitTrace {
	return &buildkitTrace{started: map[string]bool{}, ended: map[string]bool{}, names: map[string]string{}}
}

// render returns the text of one StatusResponse; malformed input gives
// what could be read.
func (t *buildkitTrace) render(b []byte) string {
	var out strings.Builder
	fields(b, func(num protowire.Number, typ protowire.Type, v []byte) {
		if typ != protowire.BytesType {
			return
		}
		switch num {
		case 1:
			t.vertex(v, &out)
		case 3:
			t.log(v, &out)
		case 4:
			t.warning(v, &out)
		}
	})
	return out.String()
}

func (t *buildkitTrace) vertex(b []byte, out *strings.Builder) {
	var digest, name, errMsg string
	var cached, started, completed bool
	fields(b, func(num protowire.Number, typ protowire.Type, v []byte) {
		switch {
		case num == 1 && typ == protowire.BytesType:
			digest = string(v)
		case num == 3 && typ == protowire.BytesType:
			name = string(v)
		case num == 4 && typ == protowire.VarintType:
			cached = len(v) > 0 && v[0] != 0
		case num == 5 && typ == protowire.BytesType:
			started = true
		case num == 6 && typ == protowire.BytesType:
			completed = true
		case num == 7 && typ == protowire.BytesType:
			errMsg = string(v)
		}
	})
	if digest == "" {
		return
	}
	if name != "" {
		t.names[digest] = name
	}
	name = t.names[digest]
	if (started || cached) && !t.started[digest] && name != "" && !strings.HasPrefix(name, "[internal]") {
		t.started[digest] = true
		out.WriteString(name + "\n")
	}
	if completed && !t.ended[digest] {
		t.ended[digest] = true
		switch {
		case errMsg != "":
			out.WriteString("ERROR: " + name + ": " + errMsg + "\n")
		case cached && !strings.HasPrefix(name, "[internal]"):
			out.WriteString("CACHED " + name + "\n")
		}
	}
}

func (t *buildkitTrace) log(b []byte, out *strings.Builder) {
	fields(b, func(num protowire.Number, typ protowire.Type, v []byte) {
		if num == 4 && typ == protowire.BytesType {
			out.Write(v)
		}
	})
}

func (t *buildkitTrace) warning(b []byte, out *strings.Builder) {
	fields(b, func(num protowire.Number, typ protowire.Type, v []byte) {
		if num == 3 && typ == protowire.BytesType {
			out.WriteString("WARNING: " + strings.TrimSpace(string(v)) + "\n")
		}
	})
}

// fields calls f with each field of a protobuf message: its number, its
// wire type and its bytes (the payload of a length-delimited field, the
// varint as one byte 0/1 for booleans' sake). It stops at malformed input.
func fields(b []byte, f func(protowire.Number, protowire.Type, []byte)) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return
			}
			f(num, typ, v)
			b = b[m:]
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return
			}
			var one byte
			if v != 0 {
				one = 1
			}
			f(num, typ, []byte{one})
			b = b[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return
			}
			b = b[m:]
		}
	}
}
