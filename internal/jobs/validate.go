package jobs

// Validation of names, labels, filters and limits that come from outside.

import (
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"
)

// ErrInvalid marks requests that can never succeed as they are (a malformed filter,
// cursor, name or label): the caller should say what is wrong, not retry.
var ErrInvalid = errors.New("invalid")

var (
	runnerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)
	repoName   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$`)
	// jobCursorKey is the shape of ListKey and QueueKey (RankKey).
	jobCursorKey = regexp.MustCompile(`^[0-9]{20}#[0-9]{20}$`)
)

// invalidError is an ErrInvalid whose message is only what is wrong, fit to show a client.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, args ...any) error {
	return &invalidError{fmt.Sprintf(format, args...)}
}

// ValidatePoolName says what is wrong with a pool name, if anything.
func ValidatePoolName(name string) error {
	if !poolName.MatchString(name) {
		return invalid("pool %q: name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// ValidateRunnerName says what is wrong with a runner name, if anything.
func ValidateRunnerName(name string) error {
	if !runnerName.MatchString(name) {
		return invalid("runner %q: name must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// ValidateRepository says what is wrong with an owner/name repository, if anything.
func ValidateRepository(repo string) error {
	if !repoName.MatchString(repo) {
		return invalid("repository %q: want owner/name (letters, digits, '.', '_' or '-')", repo)
	}
	return nil
}

// maxRunnerLabels bounds a runner's labels.
const maxRunnerLabels = 50

// maxLabelLength bounds a pool's or runner's label, in bytes.
const maxLabelLength = 100

func validateRunnerLabels(labels []string) error {
	if len(labels) > maxRunnerLabels {
		return invalid("a runner has at most %d labels, not %d", maxRunnerLabels, len(labels))
	}
	for i, l := range labels {
		if l == "" || len(l) > maxLabelLength || !utf8.ValidString(l) {
			return invalid("label %d must be 1-%d characters", i, maxLabelLength)
		}
	}
	return nil
}

func validateLimit(limit int) error {
	if limit < 1 || limit > MaxListLimit {
		return invalid("limit must be from 1 to %d, not %d", MaxListLimit, limit)
	}
	return nil
}

// Validate says what is wrong with f, if anything (errors wrap ErrInvalid).
func (f JobFilter) Validate() error {
	if f.Status != "" && f.Status != StatusPending && f.Status.Rank() == 0 {
		return invalid("status %q: want waiting, queued, in_progress, completed or pending", f.Status)
	}
	if f.Repository != "" {
		if err := ValidateRepository(f.Repository); err != nil {
			return err
		}
	}
	for _, p := range append([]string{f.Pool}, f.Pools...) {
		if p != "" {
			if err := ValidatePoolName(p); err != nil {
				return err
			}
		}
	}
	if _, err := decodeCursor(f.Cursor, jobCursorKey.MatchString); err != nil {
		return err
	}
	return validateLimit(f.Limit)
}
