// Package providers builds the provider.Provider that a pool's configuration names.
package providers

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/runnerhub/webhooks/internal/provider"
	"github.com/runnerhub/webhooks/internal/provider/ec2provider"
	"github.com/runnerhub/webhooks/internal/provider/execprovider"
)

// Factory builds providers, sharing one pair of EC2 and SSM clients per region across
// the pools. Pools change through the API, so a provider is built for each use; that
// costs nothing once the clients exist.
type Factory struct {
	// AWS loads the SDK configuration, called once, when the first ec2 provider is
	// built: the local stack may run without any.
	AWS func(context.Context) (aws.Config, error)
	Log *slog.Logger

	mu      sync.Mutex
	base    *aws.Config
	clients map[string]awsClients // by region; "" is the configuration's own
}

type awsClients struct {
	ec2 *ec2.Client
	ssm *ssm.Client
}

// For returns the provider cfg describes.
func (f *Factory) For(ctx context.Context, cfg provider.Config) (provider.Provider, error) {
	switch {
	case cfg.Exec != nil:
		return execprovider.New(*cfg.Exec, f.Log), nil
	case cfg.EC2 != nil:
		c, err := f.awsClients(ctx, cfg.EC2.Region)
		if err != nil {
			return nil, err
		}
		return ec2provider.New(*cfg.EC2, c.ec2, c.ssm, f.Log), nil
	}
	return nil, fmt.Errorf("provider type %q is not one RunnerHub knows", cfg.Type)
}

func (f *Factory) awsClients(ctx context.Context, region string) (awsClients, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.clients[region]; ok {
		return c, nil
	}
	if f.base == nil {
		if f.AWS == nil {
			return awsClients{}, fmt.Errorf("an ec2 provider needs AWS, and none is configured")
		}
		base, err := f.AWS(ctx)
		if err != nil {
			return awsClients{}, fmt.Errorf("load the AWS configuration for the ec2 provider: %w", err)
		}
		f.base = &base
	}
	cfg := f.base.Copy()
	if region != "" {
		cfg.Region = region
	}
	c := awsClients{ec2: ec2.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg)}
	if f.clients == nil {
		f.clients = map[string]awsClients{}
	}
	f.clients[region] = c
	return c, nil
}
