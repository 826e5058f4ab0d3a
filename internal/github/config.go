// Package github is RunnerHub's client of GitHub's REST API: go-github for the calls,
// ghinstallation for GitHub App authentication, a timeout on every call, and rate limits
// (primary and secondary) honoured by refusing calls until GitHub's reset instead of
// hammering it. It is used by the reconciler (redelivery, jobs, runners) and is the place
// for the provisioner's calls (JIT configurations, runner registration and removal).
package github

import "github.com/runnerhub/webhooks/internal/github/githubconfig"

// The configuration's types, read by package githubconfig.
type (
	Config = githubconfig.Config
	Hook   = githubconfig.Hook
	Scope  = githubconfig.Scope
)

// Hook kinds.
const (
	HookApp  = githubconfig.HookApp
	HookRepo = githubconfig.HookRepo
	HookOrg  = githubconfig.HookOrg
)

// ParseHook and ParseScope read one hook or runner scope.
var (
	ParseHook  = githubconfig.ParseHook
	ParseScope = githubconfig.ParseScope
)
