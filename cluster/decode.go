package cluster

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var durationType = reflect.TypeFor[time.Duration]()

// decode fills the struct v points to from the section's mapping, by yaml
// tags. With strict, a key the struct does not declare is an error.
// An empty value for a number, bool or duration keeps the field's value (the
// default), so SW_X= behaves as if SW_X were unset.
func (s Section) decode(v any, strict bool) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("cluster: Section.Decode needs a non-nil pointer to a struct, not %T", v)
	}
	n := s.at.node
	if n == nil || n.Tag == "!!null" || (n.Kind == yaml.ScalarNode && n.Value == "") {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return s.cfg.errorAt(s.at, "cluster."+s.name, n.Value, "a mapping of the "+s.name+" backend's settings", nil)
	}
	st := rv.Elem()
	fields := map[string]int{}
	var names []string
	for i := range st.NumField() {
		f := st.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	slices.Sort(names)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, ok := fields[k.Value]
		if !ok {
			if strict && !(isAdvertised(k.Value) && advertises(s.name)) {
				return unknownKey("cluster."+s.name, k.Value, s.at.file, k.Line, names)
			}
			continue
		}
		if accepted := setField(st.Field(idx), val); accepted != "" {
			return s.cfg.errorAt(located{val, s.at.file}, s.Key(k.Value), val.Value, accepted, nil)
		}
	}
	return nil
}

// isAdvertised reports whether key is one of the advertised address's keys
// that every backend's section has and SelfNode reads.
func isAdvertised(key string) bool { return key == "internalComHost" || key == "internalComPort" }

// setField stores a scalar's value in f. It returns "" on success, else what
// f would accept.
func setField(f reflect.Value, n *yaml.Node) (accepted string) {
	if n.Kind != yaml.ScalarNode {
		return "a single value, not a list or a mapping"
	}
	text := strings.TrimSpace(n.Value)
	if n.Tag == "!!null" {
		text = ""
	}
	if f.Type() == durationType {
		if text == "" {
			return ""
		}
		d, ok := parseDuration(text)
		if !ok {
			return "a duration with a unit, such as 500ms, 10s or 1m30s"
		}
		f.SetInt(int64(d))
		return ""
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(n.Value)
	case reflect.Bool:
		if text == "" {
			return ""
		}
		b, err := strconv.ParseBool(text)
		if err != nil {
			return "true or false"
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if text == "" {
			return ""
		}
		i, err := strconv.ParseInt(text, 10, f.Type().Bits())
		if err != nil {
			return "a whole number"
		}
		f.SetInt(i)
	default:
		if err := n.Decode(f.Addr().Interface()); err != nil {
			return "a value of type " + f.Type().String()
		}
	}
	return ""
}

// parseDuration reads a configured duration: Go's syntax with a unit
// (500ms, 10s, 1m30s), or 0. A bare number other than 0 is refused, since its
// unit would be a guess.
func parseDuration(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}
