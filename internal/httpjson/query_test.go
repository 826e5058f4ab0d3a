package httpjson_test

import (
	"errors"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/httpjson"
)

func TestQuery(t *testing.T) {
	word := regexp.MustCompile(`^[a-z]+$`)
	noX := func(v string) error {
		if strings.Contains(v, "x") {
			return errors.New("pool must not contain x")
		}
		return nil
	}
	long := strings.Repeat("9", 70)
	cases := []struct {
		name  string
		query string
		read  func(q *httpjson.Query) any
		want  any
		err   string // the 400's message; "" for none
	}{
		{"LookupAbsent", "", func(q *httpjson.Query) any { v, ok := q.Lookup("a"); return [2]any{v, ok} }, [2]any{"", false}, ""},
		{"LookupEmpty", "a=", func(q *httpjson.Query) any { v, ok := q.Lookup("a"); return [2]any{v, ok} }, [2]any{"", true}, ""},
		{"LookupTwice", "a=1&a=2", func(q *httpjson.Query) any { v, ok := q.Lookup("a"); return [2]any{v, ok} }, [2]any{"", false}, "a is given 2 times; give it once"},
		{"Get", "a=b", func(q *httpjson.Query) any { return q.Get("a") }, "b", ""},
		{"HasTwice", "a=1&a=2", func(q *httpjson.Query) any { return q.Has("a") }, true, ""},
		{"HasAbsent", "b=1", func(q *httpjson.Query) any { return q.Has("a") }, false, ""},
		{"Values", "a=2&a=1", func(q *httpjson.Query) any { return strings.Join(q.Values("a"), ",") }, "2,1", ""},

		{"IntAbsent", "", func(q *httpjson.Query) any { return q.Int("n", 7, 1, 10) }, 7, ""},
		{"Int", "n=10", func(q *httpjson.Query) any { return q.Int("n", 7, 1, 10) }, 10, ""},
		{"IntAboveRange", "n=11", func(q *httpjson.Query) any { return q.Int("n", 7, 1, 10) }, 7, `n must be an integer from 1 to 10, not "11"`},
		{"IntEmpty", "n=", func(q *httpjson.Query) any { return q.Int("n", 7, 1, 10) }, 7, `n must be an integer from 1 to 10, not ""`},
		{"IntClipped", "n=" + long, func(q *httpjson.Query) any { return q.Int("n", 7, 1, 10) }, 7, `n must be an integer from 1 to 10, not "` + long[:64] + `…"`},

		{"LimitAbsent", "", func(q *httpjson.Query) any { return q.Limit(50, 100) }, 50, ""},
		{"LimitEmpty", "limit=", func(q *httpjson.Query) any { return q.Limit(50, 100) }, 50, ""},
		{"Limit", "limit=100", func(q *httpjson.Query) any { return q.Limit(50, 100) }, 100, ""},
		{"LimitZero", "limit=0", func(q *httpjson.Query) any { return q.Limit(50, 100) }, 50, `limit must be a whole number from 1 to 100, not "0"`},

		{"BoolAbsent", "", func(q *httpjson.Query) any { return q.Bool("p") }, (*bool)(nil), ""},
		{"BoolTrue", "p=true", func(q *httpjson.Query) any { return *q.Bool("p") }, true, ""},
		{"BoolFalse", "p=false", func(q *httpjson.Query) any { return *q.Bool("p") }, false, ""},
		{"BoolOtherSpelling", "p=1", func(q *httpjson.Query) any { return q.Bool("p") }, (*bool)(nil), `p must be true or false, not "1"`},

		{"MatchAbsent", "", func(q *httpjson.Query) any { return q.Match("w", word, "a word") }, "", ""},
		{"Match", "w=abc", func(q *httpjson.Query) any { return q.Match("w", word, "a word") }, "abc", ""},
		{"MatchNot", "w=ABC", func(q *httpjson.Query) any { return q.Match("w", word, "a word") }, "", `w must be a word, not "ABC"`},

		{"TimeAbsent", "", func(q *httpjson.Query) any { return q.Time("since") }, time.Time{}, ""},
		{"Time", "since=2024-05-01T12:00:00.5Z", func(q *httpjson.Query) any { return q.Time("since") }, time.Date(2024, 5, 1, 12, 0, 0, 5e8, time.UTC), ""},
		{"TimeNot", "since=yesterday", func(q *httpjson.Query) any { return q.Time("since") }, time.Time{}, `since must be an RFC 3339 time such as 2024-05-01T12:00:00Z, not "yesterday"`},

		{"CheckAbsent", "", func(q *httpjson.Query) any { return q.Check("pool", noX) }, "", ""},
		{"CheckEmpty", "pool=", func(q *httpjson.Query) any { return q.Check("pool", noX) }, "", ""},
		{"Check", "pool=gpu", func(q *httpjson.Query) any { return q.Check("pool", noX) }, "gpu", ""},
		{"CheckRefused", "pool=xl", func(q *httpjson.Query) any { return q.Check("pool", noX) }, "", "pool must not contain x"},

		{"EveryProblem", "n=0&w=1&p=yes", func(q *httpjson.Query) any {
			q.Int("n", 1, 1, 2)
			q.Match("w", word, "a word")
			q.Bool("p")
			q.Failf("n and w cannot be combined")
			return nil
		}, nil, `n must be an integer from 1 to 2, not "0"; w must be a word, not "1"; p must be true or false, not "yes"; n and w cannot be combined`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := httpjson.NewQuery(httptest.NewRequest("GET", "/x?"+c.query, nil))
			got := c.read(q)
			if got != c.want {
				t.Errorf("got %#v, want %#v", got, c.want)
			}
			err := q.Err()
			switch {
			case c.err == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case c.err != "":
				var p *httpjson.Problem
				if !errors.As(err, &p) || p.Status != 400 || p.Code != "invalid_parameter" || p.Message != c.err {
					t.Errorf("error %#v, want 400 invalid_parameter %q", err, c.err)
				}
			}
		})
	}
}

func TestClip(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{strings.Repeat("a", 65), strings.Repeat("a", 64) + "…"},
	}
	for _, c := range cases {
		if got := httpjson.Clip(c.in); got != c.want {
			t.Errorf("Clip(%d bytes) = %q, want %q", len(c.in), got, c.want)
		}
	}
}
