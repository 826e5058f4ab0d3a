package jobs

import (
	"encoding/base64"
	"unicode/utf8"
)

// A cursor is the key of the last entry of a page, base64url-encoded: opaque to clients,
// and the same in every store, so that pages of several partitions merge on it.
func encodeCursor(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

// maxCursorKey bounds the key a cursor may carry: more than any key a listing makes (a
// runner's is at most 164 bytes), so a larger one was not made by a listing.
const maxCursorKey = 512

func decodeCursor(cursor string, valid func(string) bool) (string, error) {
	if cursor == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) > maxCursorKey || !utf8.Valid(b) || !valid(string(b)) {
		return "", invalid("cursor %q is not one this listing returned", cursor)
	}
	return string(b), nil
}
