package ec2provider_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/runnerhub/webhooks/internal/provider"
	"github.com/runnerhub/webhooks/internal/provider/ec2provider"
	"github.com/runnerhub/webhooks/internal/provider/providertest"
	"github.com/runnerhub/webhooks/internal/testenv"
)

type env struct {
	aws      *testenv.AWS
	ec2      *ec2.Client
	ssm      *ssm.Client
	template string // launch template ID
	subnets  []string
	log      *bytes.Buffer
}

// moto is one moto_server for the whole package: EC2 and SSM need none of the template's
// resources that SharedAWS provisions for each caller, and names differ per test.
var moto struct {
	sync.Mutex
	aws *testenv.AWS
}

func sharedMoto(t *testing.T) *testenv.AWS {
	moto.Lock()
	defer moto.Unlock() // also when SharedAWS skips the test
	if moto.aws == nil {
		moto.aws = testenv.SharedAWS(t)
	}
	return moto.aws
}

func newEnv(t *testing.T) *env {
	a := sharedMoto(t)
	return &env{aws: a, ec2: a.EC2(), ssm: a.SSM(), template: a.LaunchTemplate(t, fmt.Sprintf("runners-%d", time.Now().UnixNano())),
		subnets: a.Subnets(t), log: &bytes.Buffer{}}
}

func (e *env) provider(cfg provider.EC2Config) *ec2provider.Provider {
	return ec2provider.New(cfg, e.ec2, e.ssm, slog.New(slog.NewJSONHandler(e.log, nil)))
}

// instance describes one instance.
func (e *env) instance(t *testing.T, id string) types.Instance {
	t.Helper()
	out, err := e.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("describe %s: %v", id, err)
	}
	return out.Reservations[0].Instances[0]
}

func tag(i types.Instance, key string) string {
	for _, t := range i.Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// readParameter reads the JIT configuration as the instance does: the parameter its tag
// names, decrypted.
func (e *env) readParameter(t *testing.T, id string) (string, error) {
	t.Helper()
	name := tag(e.instance(t, id), ec2provider.TagJITParameter)
	if name == "" {
		t.Fatalf("instance %s has no %s tag", id, ec2provider.TagJITParameter)
	}
	out, err := e.ssm.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return "", err
	}
	if out.Parameter.Type != ssmtypes.ParameterTypeSecureString {
		t.Errorf("parameter %s is a %s, want a SecureString", name, out.Parameter.Type)
	}
	return aws.ToString(out.Parameter.Value), nil
}

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Harness {
		e := newEnv(t)
		p := e.provider(provider.EC2Config{LaunchTemplate: provider.LaunchTemplate{ID: e.template}, Subnets: e.subnets})
		return providertest.Harness{Provider: p, HandedJITConfig: func(t *testing.T, id string) string {
			v, err := e.readParameter(t, id)
			if err != nil {
				t.Fatalf("read the JIT configuration of %s: %v", id, err)
			}
			return v
		}}
	})
}

// TestLaunch checks what Create asks EC2 for: the launch template, a configured subnet
// and instance type, spot, the tags, and no JIT configuration anywhere but SSM.
func TestLaunch(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		cfg  provider.EC2Config
		spot bool
	}{
		{"by id, on demand", provider.EC2Config{LaunchTemplate: provider.LaunchTemplate{ID: e.template, Version: "1"},
			Subnets: e.subnets[:1], InstanceTypes: []string{"m5.large"}}, false},
		{"by name, spot", provider.EC2Config{LaunchTemplate: provider.LaunchTemplate{Name: e.templateName(t)},
			Subnets: e.subnets, InstanceTypes: []string{"c5.xlarge", "m5.large"}, Spot: true}, true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const jit = "ZW5jb2RlZC1qaXQtY29uZmlnLXRoYXQtbXVzdC1ub3QtbGVhaw=="
			pool, runner := fmt.Sprintf("launch-%d-%d", time.Now().UnixNano(), i), fmt.Sprintf("runner-launch-%d", i)
			p := e.provider(c.cfg)
			id, err := p.Create(context.Background(), provider.CreateRequest{Name: runner, Pool: pool, JITConfig: jit, Ephemeral: true})
			if err != nil {
				t.Fatal(err)
			}
			in := e.instance(t, id)
			if got := tag(in, "aws:ec2launchtemplate:id"); got != e.template {
				t.Errorf("launched from template %q, want %s", got, e.template)
			}
			if !slices.Contains(c.cfg.Subnets, aws.ToString(in.SubnetId)) {
				t.Errorf("subnet %s, want one of %v", aws.ToString(in.SubnetId), c.cfg.Subnets)
			}
			if string(in.InstanceType) != c.cfg.InstanceTypes[0] {
				t.Errorf("instance type %s, want %s", in.InstanceType, c.cfg.InstanceTypes[0])
			}
			if spot := in.InstanceLifecycle == types.InstanceLifecycleTypeSpot; spot != c.spot {
				t.Errorf("spot = %v, want %v", spot, c.spot)
			}
			for key, want := range map[string]string{ec2provider.TagPool: pool, ec2provider.TagRunner: runner,
				ec2provider.TagJITParameter: ec2provider.ParameterName(runner)} {
				if got := tag(in, key); got != want {
					t.Errorf("tag %s = %q, want %q", key, got, want)
				}
			}
			attr, err := e.ec2.DescribeInstanceAttribute(context.Background(), &ec2.DescribeInstanceAttributeInput{
				InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameUserData})
			if err != nil {
				t.Fatal(err)
			}
			if v := aws.ToString(attr.UserData.Value); v != "" {
				t.Errorf("the instance got user data %q, want none (the JIT configuration goes through SSM)", v)
			}
			if strings.Contains(e.log.String(), jit) {
				t.Errorf("the log holds the JIT configuration: %s", e.log.String())
			}

			// The instance reads the parameter once and deletes it; Delete then still succeeds.
			if got, err := e.readParameter(t, id); err != nil || got != jit {
				t.Fatalf("parameter = %q, %v; want the JIT configuration", got, err)
			}
			if _, err := e.ssm.DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String(ec2provider.ParameterName(runner))}); err != nil {
				t.Fatal(err)
			}
			if err := p.Delete(context.Background(), runner, id); err != nil {
				t.Fatalf("Delete after the instance took its parameter: %v", err)
			}
			if state := e.instance(t, id).State.Name; state != types.InstanceStateNameTerminated && state != types.InstanceStateNameShuttingDown {
				t.Errorf("instance %s is %s after Delete", id, state)
			}
		})
	}
}

func (e *env) templateName(t *testing.T) string {
	t.Helper()
	out, err := e.ec2.DescribeLaunchTemplates(context.Background(), &ec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{e.template}})
	if err != nil || len(out.LaunchTemplates) != 1 {
		t.Fatalf("describe launch template %s: %v", e.template, err)
	}
	return aws.ToString(out.LaunchTemplates[0].LaunchTemplateName)
}

// TestFailedCreateLeavesNoParameter checks that a launch that fails removes the JIT
// configuration it stored.
func TestFailedCreateLeavesNoParameter(t *testing.T) {
	e := newEnv(t)
	p := e.provider(provider.EC2Config{LaunchTemplate: provider.LaunchTemplate{Name: "no-such-template"}})
	runner := fmt.Sprintf("runner-fail-%d", time.Now().UnixNano())
	if id, err := p.Create(context.Background(), provider.CreateRequest{Name: runner, Pool: "fail", JITConfig: "x"}); err == nil {
		t.Fatalf("Create from a missing launch template = %s, want an error", id)
	}
	_, err := e.ssm.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(ec2provider.ParameterName(runner))})
	var gone *ssmtypes.ParameterNotFound
	if !errors.As(err, &gone) {
		t.Fatalf("GetParameter after a failed Create: %v, want ParameterNotFound", err)
	}
}

// TestDeleteSparesOthersInstances checks that Delete terminates only an instance tagged
// as the runner's, whatever ID it is given.
func TestDeleteSparesOthersInstances(t *testing.T) {
	e := newEnv(t)
	out, err := e.ec2.RunInstances(context.Background(), &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(e.template)}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	p := e.provider(provider.EC2Config{LaunchTemplate: provider.LaunchTemplate{ID: e.template}})
	if err := p.Delete(context.Background(), "runner-1", id); err != nil {
		t.Fatal(err)
	}
	if state := e.instance(t, id).State.Name; state != types.InstanceStateNameRunning && state != types.InstanceStateNamePending {
		t.Fatalf("an instance RunnerHub did not start is %s after Delete", state)
	}
}
