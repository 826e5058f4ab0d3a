package testenv

import "github.com/aws/aws-sdk-go-v2/service/s3"

// S3 returns an S3 client of this moto. It addresses buckets by path: moto serves every
// bucket on one host.
func (a *AWS) S3() *s3.Client {
	return s3.NewFromConfig(a.Config, func(o *s3.Options) { o.UsePathStyle = true })
}
