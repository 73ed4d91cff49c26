package kfpir

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// protoMap converts a message to the plain values protojson would produce
// (lowerCamelCase names, enums by name, int64 as strings, well-known types
// in their JSON form), without encoding and decoding JSON text.
func protoMap(m protoreflect.Message) map[string]any {
	out := map[string]any{}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := fd.JSONName()
		switch {
		case fd.IsMap():
			mm := map[string]any{}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				mm[k.String()] = protoValue(fd.MapValue(), mv)
				return true
			})
			out[name] = mm
		case fd.IsList():
			l := v.List()
			s := make([]any, l.Len())
			for i := range s {
				s[i] = protoValue(fd, l.Get(i))
			}
			out[name] = s
		default:
			out[name] = protoValue(fd, v)
		}
		return true
	})
	return out
}

func protoValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		msg := v.Message()
		switch msg.Descriptor().FullName() {
		case "google.protobuf.Struct":
			return msg.Interface().(*structpb.Struct).AsMap()
		case "google.protobuf.Value":
			return msg.Interface().(*structpb.Value).AsInterface()
		case "google.protobuf.ListValue":
			return msg.Interface().(*structpb.ListValue).AsSlice()
		case "google.protobuf.Duration":
			return durationJSON(msg.Interface().(*durationpb.Duration))
		}
		return protoMap(msg)
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return float64(v.Enum())
	case protoreflect.BoolKind:
		return v.Bool()
	case protoreflect.StringKind:
		return v.String()
	case protoreflect.BytesKind:
		return base64.StdEncoding.EncodeToString(v.Bytes())
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.FormatInt(v.Int(), 10)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.FormatUint(v.Uint(), 10)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return float64(v.Int())
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return float64(v.Uint())
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f := v.Float()
		switch {
		case math.IsNaN(f):
			return "NaN"
		case math.IsInf(f, 1):
			return "Infinity"
		case math.IsInf(f, -1):
			return "-Infinity"
		}
		return f
	}
	return fmt.Sprint(v.Interface())
}

// durationJSON formats a Duration as protojson does: seconds with 0, 3, 6
// or 9 fractional digits and an "s" suffix.
func durationJSON(d *durationpb.Duration) string {
	secs, nanos := d.GetSeconds(), d.GetNanos()
	sign := ""
	if secs < 0 || nanos < 0 {
		sign = "-"
		if secs < 0 {
			secs = -secs
		}
		if nanos < 0 {
			nanos = -nanos
		}
	}
	s := sign + strconv.FormatInt(secs, 10)
	if nanos != 0 {
		frac := fmt.Sprintf("%09d", nanos)
		for strings.HasSuffix(frac, "000") {
			frac = frac[:len(frac)-3]
		}
		s += "." + frac
	}
	return s + "s"
}
