package mockphantom

import (
	"slices"
	"strings"
)

// A note's content as the case page shows it. Notes are markdown (the
// responder writes bold words, code and a table of facts), and anyone
// with a token can write one, so the page reads only a tiny subset of
// markdown into a model of blocks and spans of plain text: paragraphs,
// tables and fenced code; bold and code spans; backslash escapes. The
// templates write the model, and html/template escapes every text like
// any other value: this file produces no HTML, and markup in a note stays
// text. Anything outside the subset is shown as it was written.

// mdSpan is a run of text, bold or code.
type mdSpan struct {
	Text       string
	Bold, Code bool
}

// mdBlock is one paragraph (its spans, line breaks kept), one table or
// one code block.
type mdBlock struct {
	Para  []mdSpan
	Table *mdTable
	Pre   string
}

// mdTable is a table; Head is nil when every header cell is empty (as in
// the responder's "| | |" tables of facts).
type mdTable struct {
	Head []mdCell
	Rows [][]mdCell
}

type mdCell []mdSpan

// mdMaxColumns is the widest table drawn as a table; a wider one is shown
// as the text it is.
const mdMaxColumns = 12

// parseMarkdown reads content, already cleaned and cut by clip (control
// characters shown as escapes, newlines kept), into blocks.
func parseMarkdown(content string) []mdBlock {
	var (
		blocks []mdBlock
		para   []string
	)
	flush := func() {
		if len(para) > 0 {
			blocks = append(blocks, mdBlock{Para: parseInline(strings.Join(para, "\n"))})
			para = nil
		}
	}
	lines := strings.Split(content, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			flush()
		case strings.HasPrefix(trimmed, "```"):
			flush()
			var code []string
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
				code = append(code, lines[i])
			}
			blocks = append(blocks, mdBlock{Pre: strings.Join(code, "\n")})
		case strings.HasPrefix(trimmed, "|") && i+1 < len(lines) && isDelimiterRow(lines[i+1]):
			end := i + 2
			for end < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[end]), "|") {
				end++
			}
			if t, ok := parseTable(lines[i:end]); ok {
				flush()
				blocks = append(blocks, mdBlock{Table: t})
			} else {
				para = append(para, lines[i:end]...)
			}
			i = end - 1
		default:
			para = append(para, line)
		}
	}
	flush()
	return blocks
}

// isDelimiterRow reports a table's second line: cells of dashes, each
// with an optional colon at either end ("|---|:--:|").
func isDelimiterRow(line string) bool {
	cells := splitRow(line)
	if len(cells) == 0 {
		return false
	}
	for _, c := range cells {
		c = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(c), ":"), ":")
		if c == "" || strings.Trim(c, "-") != "" {
			return false
		}
	}
	return true
}

// parseTable reads the lines of a table: header, delimiter, rows. Rows
// get as many cells as the header has: missing ones are empty, extra
// ones dropped, as GitHub does.
func parseTable(lines []string) (*mdTable, bool) {
	head := splitRow(lines[0])
	if len(head) > mdMaxColumns || len(splitRow(lines[1])) != len(head) {
		return nil, false
	}
	t := &mdTable{}
	cells := func(raw []string) []mdCell {
		row := make([]mdCell, len(head))
		for i := range row {
			if i < len(raw) {
				row[i] = parseInline(strings.TrimSpace(raw[i]))
			}
		}
		return row
	}
	t.Head = cells(head)
	if !slices.ContainsFunc(t.Head, func(c mdCell) bool { return len(c) > 0 }) {
		t.Head = nil
	}
	for _, l := range lines[2:] {
		t.Rows = append(t.Rows, cells(splitRow(l)))
	}
	return t, true
}

// splitRow splits a table line into its cells at the pipes that are not
// escaped ("\|" stays in the cell, for parseInline to unescape); the pipes
// at either end are optional.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	if strings.HasSuffix(line, "|") && !strings.HasSuffix(line, `\|`) {
		line = line[:len(line)-1]
	}
	var (
		cells []string
		cell  strings.Builder
	)
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line):
			cell.WriteByte(line[i])
			cell.WriteByte(line[i+1])
			i++
		case line[i] == '|':
			cells = append(cells, cell.String())
			cell.Reset()
		default:
			cell.WriteByte(line[i])
		}
	}
	return append(cells, cell.String())
}

// mdEscapable are the characters a backslash makes literal.
const mdEscapable = "\\`*_{}[]()<>#+-.!|~"

// parseInline reads the spans of a text: `code`, **bold** (which may hold
// code) and backslash escapes; a marker without its end is text.
func parseInline(s string) []mdSpan {
	var out []mdSpan
	add := func(sp mdSpan) {
		if sp.Text == "" {
			return
		}
		if n := len(out); n > 0 && !sp.Code && !out[n-1].Code && out[n-1].Bold == sp.Bold {
			out[n-1].Text += sp.Text
			return
		}
		out = append(out, sp)
	}
	var scan func(s string, bold bool)
	scan = func(s string, bold bool) {
		var text strings.Builder
		emit := func() {
			add(mdSpan{Text: text.String(), Bold: bold})
			text.Reset()
		}
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c == '\\' && i+1 < len(s) && strings.IndexByte(mdEscapable, s[i+1]) >= 0:
				text.WriteByte(s[i+1])
				i++
			case c == '`':
				end := strings.IndexByte(s[i+1:], '`')
				if end < 0 {
					text.WriteByte(c)
					continue
				}
				emit()
				add(mdSpan{Text: s[i+1 : i+1+end], Code: true, Bold: bold})
				i += end + 1
			case c == '*' && !bold && strings.HasPrefix(s[i:], "**"):
				end := strings.Index(s[i+2:], "**")
				if end <= 0 {
					text.WriteString("**")
					i++
					continue
				}
				emit()
				scan(s[i+2:i+2+end], true)
				i += end + 3
			default:
				text.WriteByte(c)
			}
		}
		emit()
	}
	scan(s, false)
	return out
}
