package template

import (
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
)

// A generator expression is what OpenShift's templates take in `from`: a
// sequence of elements, each a literal character, an escape or a class in
// brackets, optionally followed by a count {n}: "[a-zA-Z0-9]{16}",
// "admin\d{4}", "[\w\-]{8}". Unlike OpenShift's, ranges include their top:
// [0-9] yields 9 (OpenShift's generator picks from [from, to) and never
// does).
//
// Escapes: \w a word character [a-zA-Z0-9_], \d a digit [0-9], \a a letter
// [a-zA-Z], \A a symbol (ASCII punctuation), and \ before any other
// character for that character itself.

// Bounds of an expression.
const (
	// MaxCount bounds {n}, as OpenShift does.
	MaxCount = 255
	// MaxGenerated bounds a generated value's length.
	MaxGenerated = 1024
)

const (
	lower   = "abcdefghijklmnopqrstuvwxyz"
	upper   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digits  = "0123456789"
	symbols = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)

var escapes = map[byte]string{
	'w': lower + upper + digits + "_",
	'd': digits,
	'a': lower + upper,
	'A': symbols,
}

// element is one position of an expression: an alphabet and how many
// characters to draw from it.
type element struct {
	alphabet string
	count    int
}

// Expression is a parsed generator expression.
type Expression struct {
	elems []element
}

// ParseExpression parses a generator expression, saying what is wrong and
// where.
func ParseExpression(s string) (*Expression, error) {
	if s == "" {
		return nil, fmt.Errorf("is empty: give an expression such as [a-zA-Z0-9]{16}")
	}
	var e Expression
	total := 0
	for i := 0; i < len(s); {
		var alpha string
		switch c := s[i]; c {
		case '[':
			end, a, err := parseClass(s, i)
			if err != nil {
				return nil, err
			}
			alpha, i = a, end
		case '\\':
			a, err := escape(s, i)
			if err != nil {
				return nil, err
			}
			alpha, i = a, i+2
		case ']', '{', '}':
			return nil, fmt.Errorf("has %q at offset %d with nothing to close or count (escape it: \\%c)", c, i, c)
		default:
			alpha, i = string(c), i+1
		}
		count := 1
		if i < len(s) && s[i] == '{' {
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("has a count opened at offset %d and never closed", i)
			}
			n, err := strconv.Atoi(s[i+1 : i+end])
			if err != nil || n < 1 || n > MaxCount {
				return nil, fmt.Errorf("has the count {%s} at offset %d: a count is a number from 1 to %d", s[i+1:i+end], i, MaxCount)
			}
			count, i = n, i+end+1
		}
		total += count
		if total > MaxGenerated {
			return nil, fmt.Errorf("makes values longer than %d characters", MaxGenerated)
		}
		e.elems = append(e.elems, element{alphabet: alpha, count: count})
	}
	return &e, nil
}

// escape reads the escape at s[i] ('\\').
func escape(s string, i int) (string, error) {
	if i+1 >= len(s) {
		return "", fmt.Errorf("ends in a lone \\")
	}
	if a, ok := escapes[s[i+1]]; ok {
		return a, nil
	}
	if c := s[i+1]; c < 0x20 || c > 0x7e {
		return "", fmt.Errorf("escapes a non-printable or non-ASCII byte at offset %d", i+1)
	}
	return s[i+1 : i+2], nil
}

// parseClass reads the class opening at s[i] ('['), returning the offset
// after its ']' and its alphabet (each character once, in first-seen
// order).
func parseClass(s string, i int) (int, string, error) {
	start := i
	i++
	var set []byte
	seen := [256]bool{}
	add := func(a string) {
		for k := 0; k < len(a); k++ {
			if !seen[a[k]] {
				seen[a[k]] = true
				set = append(set, a[k])
			}
		}
	}
	for {
		if i >= len(s) {
			return 0, "", fmt.Errorf("has a class opened at offset %d and never closed", start)
		}
		c := s[i]
		if c == ']' {
			break
		}
		var lo byte
		switch {
		case c == '\\':
			a, err := escape(s, i)
			if err != nil {
				return 0, "", err
			}
			i += 2
			if len(a) > 1 {
				add(a)
				continue
			}
			lo = a[0]
		case c < 0x20 || c > 0x7e:
			return 0, "", fmt.Errorf("has a non-printable or non-ASCII byte at offset %d (classes take ASCII characters)", i)
		default:
			lo = c
			i++
		}
		// A range lo-hi, unless the '-' is last in the class.
		if i+1 < len(s) && s[i] == '-' && s[i+1] != ']' {
			hi := s[i+1]
			next := i + 2
			if hi == '\\' {
				a, err := escape(s, i+1)
				if err != nil {
					return 0, "", err
				}
				if len(a) > 1 {
					return 0, "", fmt.Errorf("has a range at offset %d ending in a class (%s)", i-1, s[i+1:i+3])
				}
				hi, next = a[0], i+3
			}
			if hi < 0x20 || hi > 0x7e {
				return 0, "", fmt.Errorf("has a non-printable or non-ASCII byte at offset %d (classes take ASCII characters)", i+1)
			}
			if hi < lo {
				return 0, "", fmt.Errorf("has the range %c-%c at offset %d, whose end comes before its start", lo, hi, i-1)
			}
			for b := int(lo); b <= int(hi); b++ { // inclusive: [0-9] yields 9
				add(string(rune(b)))
			}
			i = next
			continue
		}
		add(string(lo))
	}
	if len(set) == 0 {
		return 0, "", fmt.Errorf("has an empty class at offset %d", start)
	}
	return i + 1, string(set), nil
}

// Generate draws a value, each character uniformly from its alphabet,
// with random bytes from r (crypto/rand's Reader when nil).
func (e *Expression) Generate(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b strings.Builder
	for _, el := range e.elems {
		if len(el.alphabet) == 1 {
			for range el.count {
				b.WriteByte(el.alphabet[0])
			}
			continue
		}
		n := big.NewInt(int64(len(el.alphabet)))
		for range el.count {
			k, err := rand.Int(r, n)
			if err != nil {
				return "", fmt.Errorf("reading random bytes: %w", err)
			}
			b.WriteByte(el.alphabet[k.Int64()])
		}
	}
	return b.String(), nil
}

// Alphabets lists the characters each element draws from (for tests and
// `process --parameters`).
func (e *Expression) Alphabets() []string {
	out := make([]string, len(e.elems))
	for i, el := range e.elems {
		out[i] = el.alphabet
	}
	return out
}
