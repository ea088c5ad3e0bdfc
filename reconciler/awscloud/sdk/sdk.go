// Package sdk is reconciler's AWS code on aws-sdk-go-v2: loading the SDK
// configuration, checking the credentials (STS GetCallerIdentity),
// uploading backups to S3, RDS snapshots, Route 53, SES and the secret
// stores (SSM Parameter Store, Secrets Manager). Only the helper binary
// reconciler-aws (cmd/reconciler-aws) imports it: Serve answers the
// requests of package awscloud's client, so the SDK's packages and their
// init cost stay out of the reconciler binary.
//
// Configuration is aws-sdk-go-v2's default chain (environment variables,
// shared config and credentials files, then the EC2 instance profile),
// with the region and profile of the env file's aws block winning. The
// SDK's endpoint variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SSM,
// AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL_STS,
// AWS_ENDPOINT_URL_S3) are honoured by the SDK itself.
package sdk

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/developer-mesh/reconciler/reconciler/awscloud"
)

// Load returns the SDK configuration for s from the default chain and
// checks that credentials can be had. Without a region in s or the
// chain, it asks the EC2 metadata service (on EC2, the instance's
// region). Its errors are one line: what was tried, what to set, and that
// a preview (diff --base) needs no AWS.
func Load(ctx context.Context, s awscloud.Settings) (aws.Config, error) {
	file := s.File
	if file == "" {
		file = "the env file"
	}
	var opts []func(*config.LoadOptions) error
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	} else {
		opts = append(opts, config.WithEC2IMDSRegion())
	}
	profile := "AWS_PROFILE or default"
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
		profile = fmt.Sprintf("%q (aws.profile)", s.Profile)
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config (profile %s): %s; set aws.region (and aws.profile) in %s, or AWS_REGION and AWS_PROFILE; %s: %w",
			profile, oneLine(err), file, awscloud.DiffBaseHint, awscloud.ErrNoRegion)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("%w: tried aws.region in %s, AWS_REGION, the shared config (profile %s) and the EC2 metadata service; set aws.region in %s such as \"us-east-1\"; %s",
			awscloud.ErrNoRegion, file, profile, file, awscloud.DiffBaseHint)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return aws.Config{}, fmt.Errorf("%w: tried AWS_ACCESS_KEY_ID, the shared files ~/.aws/credentials and ~/.aws/config (profile %s) and the EC2 instance role; "+
			"set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile (AWS_PROFILE or aws.profile in %s), or run on an instance with a role; %s",
			awscloud.ErrNoCredentials, profile, file, awscloud.DiffBaseHint)
	}
	return cfg, nil
}

// oneLine keeps an SDK error on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
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
