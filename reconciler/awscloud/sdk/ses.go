package sdk

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
)

// SES sends email through Amazon SES v2 SendEmail (notify.Mailer). Its
// endpoint follows AWS_ENDPOINT_URL_SESV2 or AWS_ENDPOINT_URL. The sender
// must be a verified identity of the account, in the client's region.
type SES struct{ cli *sesv2.Client }

// NewSES returns an SES sender for cfg.
func NewSES(cfg aws.Config) *SES { return &SES{cli: sesv2.NewFromConfig(cfg)} }

// SendEmail sends one plain-text message from from to every address of to
// and returns the message id SES assigned. Errors name the sender and the
// number of recipients, never the body.
func (s *SES) SendEmail(ctx context.Context, from string, to []string, subject, body string) (string, error) {
	out, err := s.cli.SendEmail(ctx, &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(from),
		Destination:      &types.Destination{ToAddresses: to},
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: &types.Content{Data: aws.String(subject), Charset: aws.String("UTF-8")},
			Body:    &types.Body{Text: &types.Content{Data: aws.String(body), Charset: aws.String("UTF-8")}},
		}},
	})
	if err != nil {
		return "", fmt.Errorf("SES SendEmail from %s to %d recipient(s): %w", from, len(to), err)
	}
	return aws.ToString(out.MessageId), nil
}
