package testenv

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// EC2 returns an EC2 client of this moto.
func (a *AWS) EC2() *ec2.Client { return ec2.NewFromConfig(a.Config) }

// SSM returns an SSM client of this moto.
func (a *AWS) SSM() *ssm.Client { return ssm.NewFromConfig(a.Config) }

// PutSecret stores value in this moto's SSM as the SecureString parameter name (over any
// earlier one), as an operator keeps the GitHub credentials the functions read.
func (a *AWS) PutSecret(t testing.TB, name, value string) {
	t.Helper()
	if _, err := a.SSM().PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String(name),
		Type: ssmtypes.ParameterTypeSecureString, Value: aws.String(value), Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
}

// LaunchTemplate creates a launch template named name in this moto, from an image moto
// ships and a small instance type, and returns its ID.
func (a *AWS) LaunchTemplate(t testing.TB, name string) string {
	t.Helper()
	ctx := context.Background()
	client := a.EC2()
	images, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}, MaxResults: aws.Int32(5)})
	if err != nil || len(images.Images) == 0 {
		t.Fatalf("testenv: moto lists no image for a launch template (%v)", err)
	}
	out, err := client.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &types.RequestLaunchTemplateData{
			ImageId:      images.Images[0].ImageId,
			InstanceType: types.InstanceTypeT3Micro,
		},
	})
	if err != nil {
		t.Fatalf("testenv: create launch template %s: %v", name, err)
	}
	return aws.ToString(out.LaunchTemplate.LaunchTemplateId)
}

// Subnets returns the IDs of the subnets of moto's default VPC.
func (a *AWS) Subnets(t testing.TB) []string {
	t.Helper()
	out, err := a.EC2().DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{
		Filters: []types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}},
	})
	if err != nil || len(out.Subnets) == 0 {
		t.Fatalf("testenv: moto lists no default subnet (%v)", err)
	}
	ids := make([]string, len(out.Subnets))
	for i, s := range out.Subnets {
		ids[i] = aws.ToString(s.SubnetId)
	}
	return ids
}
