package confspec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// yamlLine is how yaml.v3 says where a syntax error is.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// SyntaxError rewrites a YAML syntax error of data (from yaml.v3) as
// "file:N: yaml: msg" with N the line where the mistake is. yaml.v3 names
// the line of the enclosing block (a flow mapping left open, the list an
// item is mis-indented in), not the broken one; the broken line is the
// first at which the text stops parsing, found by parsing ever longer
// prefixes (only on an error, and config files are short).
func SyntaxError(file string, data []byte, err error) error {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	msg := err.Error()[len(m[0]):]
	line, _ := strconv.Atoi(m[1])
	if at := firstBadLine(data); at > 0 {
		line = at
	}
	return fmt.Errorf("%s:%d: yaml: %s", file, line, msg)
}

// firstBadLine is the first line at which data stops parsing (every
// document of it), or 0 when it parses whole.
func firstBadLine(data []byte) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	end := 0
	for i, l := range lines {
		end += len(l)
		if !parses(data[:end]) {
			return i + 1
		}
	}
	return 0
}

func parses(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return false
		}
	}
}
