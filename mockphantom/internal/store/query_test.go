package store

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestParseLiteral(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    any
		wantErr bool
	}{
		{`"text"`, "text", false},
		{`'text'`, "text", false},
		{`'it\'s'`, "it's", false},
		{`"a \"b\""`, `a "b"`, false},
		{`12`, json.Number("12"), false},
		{`-1.5`, json.Number("-1.5"), false},
		{`true`, true, false},
		{`False`, false, false},
		{`null`, nil, false},
		{`None`, nil, false},
		{`[1, "a"]`, []any{json.Number("1"), "a"}, false},
		{``, nil, true},
		{`text`, nil, true},
		{`NaN`, nil, true},
		{`0x10`, nil, true},
		{`"a" "b"`, nil, true},
		{`{"a": 1}`, nil, true},
	}
	for _, tt := range tests {
		got, err := parseLiteral(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("parseLiteral(%q) = %#v, %v; want %#v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
