package template

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// fixed is a deterministic random source, so that generated values are
// the same on every run.
func fixed() *rand.ChaCha8 { return rand.NewChaCha8([32]byte{'s', 'l', 'i', 'p', 'w', 'a', 'y'}) }

func TestExpressionAlphabets(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{"[a-c]", []string{"abc"}},
		{"[0-9]{4}", []string{"0123456789"}},
		{`\d`, []string{digits}},
		{`\w`, []string{lower + upper + digits + "_"}},
		{`\a`, []string{lower + upper}},
		{`\A`, []string{symbols}},
		{`admin\d{2}`, []string{"a", "d", "m", "i", "n", digits}},
		{`[\d_-]`, []string{digits + "_-"}},
		{`[-a]`, []string{"-a"}},
		{`[a-]`, []string{"a-"}},
		{`[aa-b]`, []string{"ab"}},
		{`[\]\\]`, []string{`]\`}},
		{`[!-\/]`, []string{"!\"#$%&'()*+,-./"}},
		{`\{x\}`, []string{"{", "x", "}"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e, err := ParseExpression(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			got := e.Alphabets()
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("alphabets = %q, want %q", got, tt.want)
			}
		})
	}
}

// Ranges include their top: [0-9] yields 9 and [a-z] yields z (OpenShift's
// generator never does), and every character of an alphabet comes out.
func TestGenerateCoversInclusiveRanges(t *testing.T) {
	r := fixed()
	for _, expr := range []string{"[0-9]{255}", "[a-z]{255}", "[A-Z]{255}", `\A{255}`} {
		e, err := ParseExpression(expr)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[byte]bool{}
		for range 8 {
			v, err := e.Generate(r)
			if err != nil {
				t.Fatal(err)
			}
			if len(v) != 255 {
				t.Fatalf("%s: generated %d characters, want 255", expr, len(v))
			}
			for i := range len(v) {
				if !strings.Contains(e.Alphabets()[0], v[i:i+1]) {
					t.Fatalf("%s: generated %q, outside the alphabet", expr, v[i])
				}
				seen[v[i]] = true
			}
		}
		if len(seen) != len(e.Alphabets()[0]) {
			t.Errorf("%s: %d distinct characters in 2040 draws, want all %d (the top of the range too)", expr, len(seen), len(e.Alphabets()[0]))
		}
	}
}

func TestGenerateFixedSource(t *testing.T) {
	e, err := ParseExpression(`user\d{3}[a-zA-Z0-9]{16}`)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := e.Generate(fixed())
	b, _ := e.Generate(fixed())
	if a != b || !strings.HasPrefix(a, "user") || len(a) != 4+3+16 {
		t.Fatalf("generated %q and %q, want one value user+3 digits+16 characters", a, b)
	}
	c, _ := e.Generate(nil) // crypto/rand
	if len(c) != len(a) || c == a {
		t.Fatalf("crypto/rand generated %q", c)
	}
}

func TestExpressionErrors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"", "is empty"},
		{"[a-z]{0}", "a count is a number from 1 to 255"},
		{"[a-z]{256}", "a count is a number from 1 to 255"},
		{"[a-z]{x}", "a count is a number from 1 to 255"},
		{"[a-z]{4", "never closed"},
		{"[a-z", "never closed"},
		{"[z-a]", "whose end comes before its start"},
		{"[]", "empty class"},
		{`x\`, "lone"},
		{"a]", "nothing to close"},
		{"{3}", "nothing to close or count"},
		{`[a-\d]`, "ending in a class"},
		{"[é]", "non-ASCII"},
		{"[a-z]{255}[a-z]{255}[a-z]{255}[a-z]{255}[a-z]{255}", "longer than 1024"},
	}
	for _, tt := range tests {
		_, err := ParseExpression(tt.expr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseExpression(%q) = %v, want an error containing %q", tt.expr, err, tt.want)
		}
	}
}
