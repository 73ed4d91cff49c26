package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// message is one JSON message of the daemon's build, pull and push
// streams.
type message struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	ID          string `json:"id"`
	Progress    string `json:"progress"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

// streamError is an error reported inside a stream, with the output that
// preceded it.
type streamError struct {
	Msg  string
	Tail []string // the last lines of output before the error
}

func (e *streamError) Error() string {
	if len(e.Tail) == 0 {
		return e.Msg
	}
	return e.Msg + "; last output:\n  " + strings.Join(e.Tail, "\n  ")
}

// tailLines is how many lines of output a stream error quotes.
const tailLines = 15

// readStream copies a build, pull or push stream to log as plain text:
// build output as is, progress as one line per layer and status change
// (not every progress tick). It returns the digest a push reports, and a
// *streamError when the stream reports a failure.
func readStream(r io.Reader, log io.Writer) (digest string, err error) {
	log = discard(log)
	dec := json.NewDecoder(r)
	var tail []string
	var partial string
	lastStatus := map[string]string{}
	var trace *buildkitTrace
	addLines := func(s string) {
		s = partial + s
		lines := strings.Split(s, "\n")
		partial = lines[len(lines)-1]
		for _, l := range lines[:len(lines)-1] {
			if l = strings.TrimRight(l, "\r "); l != "" {
				tail = append(tail, l)
			}
		}
		if len(tail) > tailLines {
			tail = append([]string(nil), tail[len(tail)-tailLines:]...)
		}
	}
	for {
		var m message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return digest, fmt.Errorf("read the daemon's progress stream: %w", err)
		}
		if m.ID == "moby.buildkit.trace" {
			var b []byte // base64 in the JSON
			if json.Unmarshal(m.Aux, &b) == nil {
				if trace == nil {
					trace = newBuildkitTrace()
				}
				if text := trace.render(b); text != "" {
					io.WriteString(log, text)
					addLines(text)
				}
			}
			continue
		}
		switch {
		case m.Error != "" || m.ErrorDetail != nil:
			msg := m.Error
			if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
				msg = m.ErrorDetail.Message
			}
			if partial != "" {
				addLines("\n")
			}
			return digest, &streamError{Msg: strings.TrimSpace(msg), Tail: tail}
		case m.Stream != "":
			io.WriteString(log, m.Stream)
			addLines(m.Stream)
		case m.Status != "":
			line := m.Status
			if m.ID != "" {
				if lastStatus[m.ID] == m.Status {
					continue // a progress tick
				}
				lastStatus[m.ID] = m.Status
				line = m.ID + ": " + m.Status
			}
			io.WriteString(log, line+"\n")
			addLines(line + "\n")
		}
		if len(m.Aux) > 0 {
			var aux struct {
				Digest string `json:"Digest"`
			}
			if json.Unmarshal(m.Aux, &aux) == nil && aux.Digest != "" {
				digest = aux.Digest
			}
		}
	}
	if partial != "" {
		io.WriteString(log, "\n")
	}
	return digest, nil
}
