package providers_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/runnerhub/webhooks/internal/provider"
	"github.com/runnerhub/webhooks/internal/provider/ec2provider"
	"github.com/runnerhub/webhooks/internal/provider/execprovider"
	"github.com/runnerhub/webhooks/internal/provider/providers"
)

func TestFactory(t *testing.T) {
	loads := 0
	f := &providers.Factory{Log: slog.New(slog.DiscardHandler), AWS: func(context.Context) (aws.Config, error) {
		loads++
		return aws.Config{Region: "us-east-1"}, nil
	}}
	ctx := context.Background()
	execCfg := provider.Config{Type: provider.TypeExec, Exec: &provider.ExecConfig{Command: []string{"/bin/true"}, Timeout: time.Second}}
	ec2Cfg := func(region string) provider.Config {
		return provider.Config{Type: provider.TypeEC2, EC2: &provider.EC2Config{LaunchTemplate: provider.LaunchTemplate{Name: "t"}, Region: region}}
	}
	if p, err := f.For(ctx, execCfg); err != nil || !is[*execprovider.Provider](p) {
		t.Fatalf("exec: %T, %v", p, err)
	}
	if loads != 0 {
		t.Errorf("an exec provider loaded the AWS configuration")
	}
	for _, region := range []string{"", "eu-west-1", ""} {
		if p, err := f.For(ctx, ec2Cfg(region)); err != nil || !is[*ec2provider.Provider](p) {
			t.Fatalf("ec2 in %q: %T, %v", region, p, err)
		}
	}
	if loads != 1 {
		t.Errorf("the AWS configuration was loaded %d times, want once", loads)
	}
	if _, err := f.For(ctx, provider.Config{Type: "docker"}); err == nil || !strings.Contains(err.Error(), `"docker"`) {
		t.Errorf("unknown type: %v", err)
	}

	broken := &providers.Factory{AWS: func(context.Context) (aws.Config, error) { return aws.Config{}, errors.New("no credentials") }}
	if _, err := broken.For(ctx, ec2Cfg("")); err == nil || !strings.Contains(err.Error(), "no credentials") {
		t.Errorf("ec2 without AWS: %v", err)
	}
	if _, err := (&providers.Factory{}).For(ctx, ec2Cfg("")); err == nil {
		t.Error("ec2 with no AWS at all: no error")
	}
}

func is[T any](v any) bool { _, ok := v.(T); return ok }
