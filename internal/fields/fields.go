// Package fields is how domain packages say what is wrong with the options
// they were given without knowing how the user gave them: an error names
// the fields of an options struct ({Namespace}, {PhantomURL}), and the
// command that filled the struct from flags says them as flags
// (--namespace, --phantom-url), while a Go caller sees the field names.
package fields

import (
	"errors"
	"fmt"
	"strings"
)

// Error is one problem with one or more fields. Its format names each
// field as {Field}; the values in args are inserted after the names, so a
// value can never be taken for a field.
type Error struct {
	format string
	args   []any
}

// Errorf makes an Error; format names fields as {Field} and takes args
// like fmt.Sprintf.
func Errorf(format string, args ...any) *Error { return &Error{format: format, args: args} }

// Fields lists the fields the error names, in order.
func (e *Error) Fields() []string {
	var out []string
	rest := e.format
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return out
		}
		out = append(out, rest[i+1:i+j])
		rest = rest[i+j+1:]
	}
}

// Text says the problem with each field called what name returns for it.
func (e *Error) Text(name func(field string) string) string {
	var b strings.Builder
	rest := e.format
	for {
		i := strings.IndexByte(rest, '{')
		j := -1
		if i >= 0 {
			j = strings.IndexByte(rest[i:], '}')
		}
		if i < 0 || j < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		// A name goes through Sprintf with the format: keep its % literal.
		b.WriteString(strings.ReplaceAll(name(rest[i+1:i+j]), "%", "%%"))
		rest = rest[i+j+1:]
	}
	return fmt.Sprintf(b.String(), e.args...)
}

// Error says the problem with the fields' own names.
func (e *Error) Error() string { return e.Text(func(f string) string { return f }) }

// List is every problem found in one set of options.
type List []*Error

// Error joins the problems with "; ".
func (l List) Error() string { return l.Text(func(f string) string { return f }) }

// Text joins the problems, each field called what name returns.
func (l List) Text(name func(field string) string) string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Text(name)
	}
	return strings.Join(parts, "; ")
}

// Err returns l as an error, or nil when it is empty.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Rename says err's fields with name when err is (or wraps) a List or an
// Error, and returns err otherwise.
func Rename(err error, name func(field string) string) error {
	var l List
	if errors.As(err, &l) {
		return errors.New(l.Text(name))
	}
	var e *Error
	if errors.As(err, &e) {
		return errors.New(e.Text(name))
	}
	return err
}
