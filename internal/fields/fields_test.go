package fields

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestTextAndRename(t *testing.T) {
	t.Parallel()
	e := Errorf("{MockPhantom} and {PhantomURL} exclude each other; {Driver} %q: want {x}", "a{PhantomURL}%d")
	if got := e.Fields(); !slices.Equal(got, []string{"MockPhantom", "PhantomURL", "Driver", "x"}) {
		t.Errorf("Fields = %q", got)
	}
	flag := func(f string) string {
		return map[string]string{"MockPhantom": "--mock-phantom", "PhantomURL": "--phantom-url", "Driver": "--falco-driver", "x": "100%"}[f]
	}
	if got, want := e.Text(flag), `--mock-phantom and --phantom-url exclude each other; --falco-driver "a{PhantomURL}%d": want 100%`; got != want {
		t.Errorf("Text = %s\nwant   %s", got, want)
	}
	if got, want := e.Error(), `MockPhantom and PhantomURL exclude each other; Driver "a{PhantomURL}%d": want x`; got != want {
		t.Errorf("Error = %s\nwant    %s", got, want)
	}
	l := List{e, Errorf("{Timeout} must be positive")}
	err := fmt.Errorf("invalid: %w", l.Err())
	if got := Rename(err, func(f string) string { return "<" + f + ">" }).Error(); got != `<MockPhantom> and <PhantomURL> exclude each other; <Driver> "a{PhantomURL}%d": want <x>; <Timeout> must be positive` {
		t.Errorf("Rename = %s", got)
	}
	plain := errors.New("plain")
	if Rename(plain, flag) != plain || List(nil).Err() != nil {
		t.Error("Rename changed a plain error, or an empty List is an error")
	}
}
