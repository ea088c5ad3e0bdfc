// Package awscloud wraps the parts of AWS that reconciler uses besides the
// secret stores: loading the SDK configuration, checking the credentials
// (STS GetCallerIdentity) and uploading backups to S3.
//
// Configuration is aws-sdk-go-v2's default chain: environment variables,
// shared config and credentials files, then the EC2 instance profile. The
// SDK's endpoint variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SSM,
// AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL_STS,
// AWS_ENDPOINT_URL_S3) are honoured by the SDK itself.
package awscloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// ErrNoRegion is returned by Load when no region is configured.
var ErrNoRegion = errors.New("no AWS region configured: set AWS_REGION, or region in ~/.aws/config (on EC2 the instance's region is used)")

// Load returns the SDK configuration from the default chain. On EC2 without
// a configured region it asks the instance metadata service for it.
func Load(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithEC2IMDSRegion())
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, ErrNoRegion
	}
	return cfg, nil
}

// Identity checks credentials with STS GetCallerIdentity.
type Identity struct{ cli *sts.Client }

// NewIdentity returns an Identity for cfg.
func NewIdentity(cfg aws.Config) *Identity { return &Identity{cli: sts.NewFromConfig(cfg)} }

// CallerIdentity returns the ARN the credentials belong to, or an error
// saying that they are not valid.
func (i *Identity) CallerIdentity(ctx context.Context) (string, error) {
	out, err := i.cli.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("AWS credentials are not valid (STS GetCallerIdentity): %w", err)
	}
	return aws.ToString(out.Arn), nil
}

// S3 uploads objects to one bucket under a prefix.
type S3 struct {
	cli    *s3.Client
	bucket string
	prefix string
}

// NewS3 returns an S3 uploader for url, "s3://bucket/prefix". Where an
// endpoint variable names a compatible store (AWS_ENDPOINT_URL_S3 or
// AWS_ENDPOINT_URL), requests are path-style, which such stores expect.
func NewS3(cfg aws.Config, url string) (*S3, error) {
	rest, ok := strings.CutPrefix(url, "s3://")
	bucket, prefix, _ := strings.Cut(rest, "/")
	if !ok || bucket == "" {
		return nil, fmt.Errorf("backup.s3: want s3://bucket/prefix, got %q", url)
	}
	pathStyle := os.Getenv("AWS_ENDPOINT_URL_S3") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
	cli := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = pathStyle })
	return &S3{cli: cli, bucket: bucket, prefix: strings.Trim(prefix, "/")}, nil
}

// Put writes body to prefix/key and returns the object's s3:// URL.
func (s *S3) Put(ctx context.Context, key string, body []byte) (string, error) {
	if s.prefix != "" {
		key = s.prefix + "/" + key
	}
	_, err := s.cli.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	})
	url := "s3://" + s.bucket + "/" + key
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", url, err)
	}
	return url, nil
}
