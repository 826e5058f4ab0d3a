// Package awsreconcile builds the ReconcilerFunction's reconciler from the AWS app: the
// GitHub credentials from SSM Parameter Store, the DynamoDB store and the events queue.
// It is apart from awsapp so that the other functions do not link the GitHub client.
package awsreconcile

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/runnerhub/webhooks/internal/awsapp"
	"github.com/runnerhub/webhooks/internal/github"
	"github.com/runnerhub/webhooks/internal/reconcile"
)

// GitHubConfig is the configuration's GitHub part with its secrets loaded: the GitHub
// App's private key (RUNNERHUB_GITHUB_APP_PRIVATE_KEY_PARAMETER) or a token
// (RUNNERHUB_GITHUB_TOKEN_PARAMETER), read decrypted from SSM Parameter Store. Call it
// once per cold start; functions that talk to GitHub build their client from it.
func GitHubConfig(ctx context.Context, a *awsapp.App) (github.Config, error) {
	gc := a.Config.GitHub
	tokenParameter := os.Getenv("RUNNERHUB_GITHUB_TOKEN_PARAMETER")
	if gc.AppPrivateKeyParameter == "" && tokenParameter == "" {
		return gc, nil
	}
	params := ssm.NewFromConfig(a.AWS)
	read := func(name string) ([]byte, error) {
		out, err := params.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("reading SSM parameter %s: %w", name, err)
		}
		return []byte(aws.ToString(out.Parameter.Value)), nil
	}
	if gc.AppPrivateKeyParameter != "" {
		key, err := read(gc.AppPrivateKeyParameter)
		if err != nil {
			return gc, err
		}
		gc.AppPrivateKey = key
	}
	if tokenParameter != "" && gc.AppID == 0 {
		token, err := read(tokenParameter)
		if err != nil {
			return gc, err
		}
		gc.Token = strings.TrimSpace(string(token))
	}
	return gc, nil
}

// GitHubClient is the function's GitHub client, built from GitHubConfig and observed by
// m. Without GitHub credentials the client is nil and the function logs so once, with
// off: what it then does not do.
func GitHubClient(ctx context.Context, a *awsapp.App, m github.Observer, off string) (github.Config, *github.Client, error) {
	gc, err := GitHubConfig(ctx, a)
	if err != nil || !gc.Enabled() {
		if err == nil {
			a.Log.Info("GitHub: no credentials configured (GitHubAppId with GitHubAppPrivateKeyParameter, or GitHubTokenParameter): " + off)
		}
		return gc, nil, err
	}
	client, err := github.New(gc, github.Options{Observer: m, Log: a.Log})
	return gc, client, err
}

// New builds the reconciler of the ReconcilerFunction from GitHubConfig. Without
// GitHub credentials it logs so once and returns nil.
func New(ctx context.Context, a *awsapp.App) (*reconcile.Reconciler, error) {
	m := awsapp.NewEMF()
	gc, client, err := GitHubClient(ctx, a, m, "redelivery and reconciliation are off")
	if err != nil || client == nil {
		return nil, err
	}
	r := &reconcile.Reconciler{
		GitHub: client, Hooks: gc.Hooks, Deliveries: a.Store, Queue: a.Queue, Jobs: a.Store, Checkpoints: a.Store,
		Metrics: m, Limits: reconcile.DefaultLimits, Interval: gc.Interval, After: gc.After, Log: a.Log, Now: time.Now,
	}
	if len(gc.RunnerScopes) > 0 {
		// Runner changes go through the commit pipeline, whose subscribers send their
		// demands (the reconciler sends none itself), count conflicts and log handovers.
		engine := a.Engine(m)
		r.Runners = &reconcile.RunnerReconciler{GitHub: client, Engine: engine, Scopes: gc.RunnerScopes,
			Import: gc.ImportRunners, Grace: gc.After, Log: a.Log, Now: time.Now}
	}
	return r, nil
}
