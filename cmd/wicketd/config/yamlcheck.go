package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong in a config file: where, which field, and
// what to do about it, in words a technician can act on.
type Problem struct {
	// Line is the line in the file (1-based); 0 when the field is not
	// written in the file (a default, or a check across fields).
	Line int
	// Field is the dotted key, e.g. scanner.baud; empty for the file.
	Field string
	// Msg says what is wrong and the fix.
	Msg string
}

func (p Problem) String() string {
	s := p.Msg
	if p.Field != "" {
		s = p.Field + ": " + s
	}
	if p.Line > 0 {
		s = fmt.Sprintf("line %d: %s", p.Line, s)
	}
	return s
}

// Problems is every problem found in a config, in file order. As an error
// it prints one problem a line.
type Problems []Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "\n")
}

var (
	durationType        = reflect.TypeOf(time.Duration(0))
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	nodeType            = reflect.TypeOf(yaml.Node{})
	yamlLineRe          = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// checkYAML reads data as YAML and checks it against the shape of Config
// before it is decoded, so that each problem is reported once, at its own
// line, in plain words: tabs, over-indented keys, unknown keys (with the
// nearest known key), and values of the wrong form (never a Go type name).
// It returns the line of every key, by dotted path, for later checks.
func checkYAML(data []byte) (map[string]int, Problems) {
	var probs Problems
	for i, line := range strings.Split(string(data), "\n") {
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if strings.Contains(indent, "\t") && strings.TrimSpace(line) != "" {
			probs = append(probs, Problem{Line: i + 1, Msg: "a tab is used for indentation; YAML needs spaces (replace the tab with spaces, lined up with the keys around it)"})
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Problems{syntaxProblem(err)}
	}
	lines := map[string]int{}
	if len(doc.Content) == 0 {
		return lines, nil
	}
	walkYAML(doc.Content[0], reflect.TypeOf(Config{}), "", lines, &probs)
	return lines, probs
}

// syntaxProblem turns a YAML parser error into words.
func syntaxProblem(err error) Problem {
	m := yamlLineRe.FindStringSubmatch(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  "))
	if m == nil {
		return Problem{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	line, _ := strconv.Atoi(m[1])
	msg := m[2]
	switch {
	case strings.Contains(msg, "mapping values are not allowed"):
		msg = "this key is indented further than the key above it (or a value holds \": \"); line it up with the other keys of its section, or quote the value"
	case strings.Contains(msg, "did not find expected key"):
		msg = "this line is indented less than the keys above it expect; line it up with the other keys of its section"
	case strings.Contains(msg, "cannot start any token"):
		msg = "a character that cannot start a value (a tab, @ or `); use spaces to indent, and quote the value"
	}
	return Problem{Line: line, Msg: msg}
}

// walkYAML checks node n against type t at the dotted path.
func walkYAML(n *yaml.Node, t reflect.Type, path string, lines map[string]int, probs *Problems) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nodeType || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return
	}
	bad := func(msg string) { *probs = append(*probs, Problem{Line: n.Line, Field: path, Msg: msg}) }
	if msg, leaf := leafProblem(n, t); leaf {
		if msg != "" {
			bad(msg)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			bad("a section of keys goes here (each key on its own line, indented under " + lastKey(path) + "), not " + describeNode(n))
			return
		}
		walkStruct(n, t, path, lines, probs)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			bad("a section of keys goes here, not " + describeNode(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			sub := joinPath(path, n.Content[i].Value)
			lines[sub] = n.Content[i].Line
			walkYAML(n.Content[i+1], t.Elem(), sub, lines, probs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			bad("a list goes here, e.g. [a, b] or one \"- item\" a line, not " + describeNode(n))
			return
		}
		for i, e := range n.Content {
			walkYAML(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), lines, probs)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			bad(fmt.Sprintf("a single value goes here, not %s; is a key under it indented too far?", describeNode(n)))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			bad(fmt.Sprintf("%s is not %s", n.Value, kindWords(t)))
		}
	}
}

// walkStruct checks the keys of mapping n against struct type t at the
// dotted path: each key known and written once, each value of its field's
// form.
func walkStruct(n *yaml.Node, t reflect.Type, path string, lines map[string]int, probs *Problems) {
	fields := structFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := joinPath(path, k.Value)
		if l, ok := lines[sub]; ok {
			*probs = append(*probs, Problem{Line: k.Line, Field: sub, Msg: fmt.Sprintf("already written at line %d; write each key once (merge the two)", l)})
			continue
		}
		ft, ok := fields[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", k.Value)
			if s := nearest(k.Value, fields); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += "; see configs/wicketd.yaml for the keys of " + sectionName(path)
			}
			*probs = append(*probs, Problem{Line: k.Line, Field: path, Msg: msg})
			continue
		}
		lines[sub] = k.Line
		walkYAML(v, ft, sub, lines, probs)
	}
}

// leafProblem checks n against a type written as one value of its own
// form: a duration, or a type that parses itself (UnmarshalText). leaf is
// false for every other type; msg is empty when the value is good.
func leafProblem(n *yaml.Node, t reflect.Type) (msg string, leaf bool) {
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			return "a duration goes here, such as 3s or 500ms, not " + describeNode(n), true
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			return fmt.Sprintf("%s is not a duration; write e.g. 3s or 500ms", n.Value), true
		}
		return "", true
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		if n.Kind != yaml.ScalarNode {
			return "a single value goes here, not " + describeNode(n), true
		}
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			return textError(err), true
		}
		return "", true
	}
	return "", false
}

// textError is the message of a type's own parse error without the
// sentinel it wraps ("invalid config: terminator "tab": use cr, lf or
// crlf" reads as "terminator "tab": use cr, lf or crlf"): the field is
// already named.
func textError(err error) string {
	msg := err.Error()
	if inner := errors.Unwrap(err); inner != nil {
		msg = strings.TrimPrefix(msg, inner.Error()+": ")
	}
	return msg
}

// structFields maps the yaml keys of a struct type (inline fields
// included) to their types.
func structFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		if len(tag) > 1 && tag[1] == "inline" {
			for k, v := range structFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if !f.IsExported() || tag[0] == "-" {
			continue
		}
		name := tag[0]
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

// kindWords names the form a value of type t takes.
func kindWords(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number of 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a single value (quote it)"
}

// describeNode says what a node is, in words.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section of keys"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func lastKey(path string) string {
	if path == "" {
		return "the file"
	}
	return path[strings.LastIndex(path, ".")+1:]
}

func sectionName(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

// nearest returns the known key closest to key by edit distance, if it is
// close enough to be a typo: at most two edits, or a third of the key.
func nearest(key string, known map[string]reflect.Type) string {
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestD := "", max(2, len(key)/3)+1
	for _, k := range names {
		if d := editDistance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
