// Package ec2provider is the "ec2" provider: one instance per runner, run from the pool's
// launch template and terminated on delete.
//
// The JIT configuration never travels in user data (readable by anyone who may describe
// the instance, and kept for its whole life): Create stores it as an SSM SecureString
// parameter, /runnerhub/jit/<runner>, and tags the instance with that parameter's name
// (runnerhub:jit-parameter), which the instance reads from its metadata (tags in
// instance metadata are switched on at launch). The instance's start-up script reads the
// parameter once, deletes it and starts the runner with it; Delete removes the parameter
// too, for an instance that never got that far.
package ec2provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/runnerhub/webhooks/internal/provider"
)

// The tags of a RunnerHub instance. TagPool also marks an instance as managed: the IAM
// policy lets RunnerHub terminate only instances that carry it.
const (
	TagPool         = "runnerhub:pool"
	TagRunner       = "runnerhub:runner"
	TagJITParameter = "runnerhub:jit-parameter"
)

// ParameterPrefix starts the name of every JIT configuration parameter.
const ParameterPrefix = "/runnerhub/jit/"

// Provider runs one pool's instances.
type Provider struct {
	cfg provider.EC2Config
	ec2 *ec2.Client
	ssm *ssm.Client
	log *slog.Logger
}

var _ provider.Provider = (*Provider)(nil)

// New returns the provider for cfg, calling EC2 and SSM through the clients given.
func New(cfg provider.EC2Config, ec2Client *ec2.Client, ssmClient *ssm.Client, log *slog.Logger) *Provider {
	return &Provider{cfg: cfg, ec2: ec2Client, ssm: ssmClient, log: log}
}

// ParameterName is the SSM parameter that holds the JIT configuration of runner name.
func ParameterName(runner string) string { return ParameterPrefix + runner }

// Create stores the JIT configuration, then runs one instance, trying the next subnet
// or instance type when one has no capacity. A failed Create leaves no parameter.
func (p *Provider) Create(ctx context.Context, req provider.CreateRequest) (string, error) {
	param := ParameterName(req.Name)
	_, err := p.ssm.PutParameter(ctx, &ssm.PutParameterInput{
		Name:        aws.String(param),
		Value:       aws.String(req.JITConfig),
		Type:        ssmtypes.ParameterTypeSecureString,
		Overwrite:   aws.Bool(true), // a retried Create after a lost answer
		Description: aws.String("RunnerHub JIT configuration of runner " + req.Name + ", read once by its instance"),
	})
	if err != nil {
		return "", fmt.Errorf("ec2 provider create %s: store the JIT configuration: %w", req.Name, err)
	}
	id, err := p.run(ctx, req, param)
	if err != nil {
		p.deleteParameter(context.WithoutCancel(ctx), param)
		return "", fmt.Errorf("ec2 provider create %s: %w", req.Name, err)
	}
	return id, nil
}

// launch is one way to run the instance: a subnet and an instance type, either left to
// the launch template when empty.
type launch struct{ subnet, instanceType string }

// launches lists every instance type and subnet pair, instance types in their order and
// subnets from one picked by the runner's name, so that runners spread over the subnets.
func (p *Provider) launches(name string) []launch {
	subnets, types := p.cfg.Subnets, p.cfg.InstanceTypes
	if len(subnets) == 0 {
		subnets = []string{""}
	}
	if len(types) == 0 {
		types = []string{""}
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	start := int(h.Sum32() % uint32(len(subnets)))
	out := make([]launch, 0, len(types)*len(subnets))
	for _, t := range types {
		for i := range subnets {
			out = append(out, launch{subnets[(start+i)%len(subnets)], t})
		}
	}
	return out
}

func (p *Provider) run(ctx context.Context, req provider.CreateRequest, param string) (string, error) {
	tags := []types.Tag{
		{Key: aws.String(TagPool), Value: aws.String(req.Pool)},
		{Key: aws.String(TagRunner), Value: aws.String(req.Name)},
		{Key: aws.String(TagJITParameter), Value: aws.String(param)},
		{Key: aws.String("Name"), Value: aws.String(req.Name)},
	}
	var errs []error
	for _, l := range p.launches(req.Name) {
		in := &ec2.RunInstancesInput{
			MinCount:       aws.Int32(1),
			MaxCount:       aws.Int32(1),
			LaunchTemplate: p.launchTemplate(),
			ClientToken:    clientToken(req.Name, l),
			TagSpecifications: []types.TagSpecification{
				{ResourceType: types.ResourceTypeInstance, Tags: tags},
				{ResourceType: types.ResourceTypeVolume, Tags: tags[:2]},
			},
			// The instance reads the parameter's name from its tags, over IMDSv2 only.
			MetadataOptions: &types.InstanceMetadataOptionsRequest{
				HttpTokens:           types.HttpTokensStateRequired,
				HttpEndpoint:         types.InstanceMetadataEndpointStateEnabled,
				InstanceMetadataTags: types.InstanceMetadataTagsStateEnabled,
			},
		}
		if l.subnet != "" {
			in.SubnetId = aws.String(l.subnet)
		}
		if l.instanceType != "" {
			in.InstanceType = types.InstanceType(l.instanceType)
		}
		if p.cfg.Spot {
			in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{
				MarketType: types.MarketTypeSpot,
				SpotOptions: &types.SpotMarketOptions{
					SpotInstanceType:             types.SpotInstanceTypeOneTime,
					InstanceInterruptionBehavior: types.InstanceInterruptionBehaviorTerminate,
				},
			}
		}
		out, err := p.ec2.RunInstances(ctx, in)
		if err == nil && len(out.Instances) == 1 {
			return aws.ToString(out.Instances[0].InstanceId), nil
		}
		if err == nil {
			err = fmt.Errorf("RunInstances answered %d instances", len(out.Instances))
		}
		errs = append(errs, fmt.Errorf("subnet %q, instance type %q: %w", l.subnet, l.instanceType, err))
		if !noCapacity(err) {
			break
		}
		p.log.LogAttrs(ctx, slog.LevelInfo, "ec2 provider: no capacity, trying the next launch",
			slog.String("runner", req.Name), slog.String("subnet", l.subnet), slog.String("instanceType", l.instanceType),
			slog.String("error", err.Error()))
	}
	return "", errors.Join(errs...)
}

func (p *Provider) launchTemplate() *types.LaunchTemplateSpecification {
	lt := p.cfg.LaunchTemplate
	spec := &types.LaunchTemplateSpecification{Version: aws.String(lt.Version)}
	if lt.Version == "" {
		spec.Version = aws.String("$Default")
	}
	if lt.ID != "" {
		spec.LaunchTemplateId = aws.String(lt.ID)
	} else {
		spec.LaunchTemplateName = aws.String(lt.Name)
	}
	return spec
}

// clientToken makes RunInstances idempotent per runner and launch: a Create retried
// after a lost answer gets the instance the first call started. (EC2 keeps tokens for
// at least a few hours; runner names are unique.)
func clientToken(name string, l launch) *string {
	sum := sha256.Sum256([]byte(name + "\x00" + l.subnet + "\x00" + l.instanceType))
	return aws.String(hex.EncodeToString(sum[:24]))
}

// noCapacity says whether another subnet or instance type may succeed where err failed.
func noCapacity(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case "InsufficientInstanceCapacity", "InsufficientFreeAddressesInSubnet", "InsufficientCapacity",
		"Unsupported", "SpotMaxPriceTooLow", "MaxSpotInstanceCountExceeded", "InsufficientCapacityOnHost":
		return true
	}
	return false
}

// Delete terminates the instance, if it is still the runner's, and removes the JIT
// configuration parameter, if the instance has not already.
func (p *Provider) Delete(ctx context.Context, name, providerID string) error {
	out, err := p.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("instance-id"), Values: []string{providerID}},
		{Name: aws.String("tag:" + TagRunner), Values: []string{name}},
		{Name: aws.String("instance-state-name"), Values: liveStates},
	}})
	if err != nil {
		return fmt.Errorf("ec2 provider delete %s: find instance %s: %w", name, providerID, err)
	}
	if found := instances(out); len(found) > 0 {
		_, err := p.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{providerID}})
		if err != nil && !isCode(err, "InvalidInstanceID.NotFound") {
			return fmt.Errorf("ec2 provider delete %s: terminate %s: %w", name, providerID, err)
		}
	}
	return p.deleteParameter(ctx, ParameterName(name))
}

func (p *Provider) deleteParameter(ctx context.Context, param string) error {
	_, err := p.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(param)})
	var gone *ssmtypes.ParameterNotFound
	if err != nil && !errors.As(err, &gone) {
		p.log.LogAttrs(ctx, slog.LevelWarn, "ec2 provider: JIT configuration parameter left behind",
			slog.String("parameter", param), slog.String("error", err.Error()))
		return fmt.Errorf("delete parameter %s: %w", param, err)
	}
	return nil
}

// liveStates are the states of an instance that is, or may again be, running.
var liveStates = []string{"pending", "running", "stopping", "stopped"}

// List returns the pool's instances that are not terminated or being terminated.
func (p *Provider) List(ctx context.Context, pool string) ([]provider.Instance, error) {
	pages := ec2.NewDescribeInstancesPaginator(p.ec2, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + TagPool), Values: []string{pool}},
		{Name: aws.String("instance-state-name"), Values: liveStates},
	}})
	var out []provider.Instance
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ec2 provider list %s: %w", pool, err)
		}
		out = append(out, instances(page)...)
	}
	return out, nil
}

// instances reads each instance of a DescribeInstances answer as the runner its tag names.
func instances(out *ec2.DescribeInstancesOutput) []provider.Instance {
	var found []provider.Instance
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			in := provider.Instance{ProviderID: aws.ToString(i.InstanceId)}
			for _, t := range i.Tags {
				if aws.ToString(t.Key) == TagRunner {
					in.Name = aws.ToString(t.Value)
				}
			}
			found = append(found, in)
		}
	}
	return found
}

func isCode(err error, code string) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == code
}
