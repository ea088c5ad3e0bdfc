package state

import (
	"strings"
)

// Starter returns a commented starter env file for environment name: one
// HTTP service, one worker, and every optional block commented out. Load
// accepts it as written (it references no other file).
func Starter(name string) string {
	return strings.ReplaceAll(starter, "NAME", name)
}

const starter = `# Desired state of the NAME environment, written by reconciler init.
#
# Merging a change to this file into the branch the agent follows deploys
# it; git revert rolls it back. Check it with
#   reconciler validate --env NAME
# and preview a change without a host, AWS or secrets with
#   reconciler diff --env NAME --base main
# Every field: docs/env-reference.md. Lines starting with # are optional
# blocks: remove the # to use one.

environment: NAME                # must equal the file's name

# nginx:                         # where reconciler writes its nginx files (these are the defaults)
#   confDir: /etc/nginx/conf.d
#   test: nginx -t
#   reload: nginx -s reload
#   logDir: /var/log/nginx

# aws:                           # the AWS region (and profile) for secrets, backups, snapshots, email
#   region: us-east-1            # with it, the EC2 metadata service is never asked for a region
#   profile: deploy

# defaults:                      # what every service inherits; maps merge by key, lists replace
#   envFile: envs/NAME.env       # KEY=value file of this repository
#   env:
#     LOG_LEVEL: info
#   secrets:                     # resolved at deploy time; values never reach git or a log
#     DATABASE_PASSWORD: ssm:/myapp/NAME/database_password
#   memory: 256m
#   drain: 30s                   # 0s: no drain, the old color goes right after the switch

services:
  web:                           # an HTTP service: nginx proxies to it, switched blue-green
    image: ghcr.io/example/web:v1.0.0   # a pinned tag or @sha256 digest
    containerPort: 8080          # published on 127.0.0.1, one port per color
    listen: "80"                 # the nginx listen directive; "443 ssl" needs tls
    # serverName: web.example.com
    # tls:
    #   certificate: /etc/letsencrypt/live/web.example.com/fullchain.pem
    #   key: /etc/letsencrypt/live/web.example.com/privkey.pem
    # command: ["/app/server", "serve"]
    # env:
    #   PORT: "8080"
    # files:
    #   - source: config/web.yaml    # a file of this repository
    #     target: /app/config.yaml
    # memory: 256m
    # health:                    # must pass before traffic moves (these are the defaults)
    #   path: /health
    #   interval: 2s
    #   timeout: 1s
    #   healthyThreshold: 2
    #   unhealthyThreshold: 3
    #   startTimeout: 60s
    # drain: 30s
    # deploy:
    #   strategy: blue-green     # or canary, with steps: [10, 50, 100] and stepPause: 1m
    #   bake: 5m                 # watch the new color after the switch
    #   maxErrorRate: 10%        # 5xx share that rolls back
    # smoke:
    #   - path: /health          # through nginx after the switch
    #     status: 200
    # route53:
    #   healthCheckId: abcdef12-3456-7890-abcd-ef1234567890

  worker:                        # no containerPort: a worker, replaced start-first
    image: ghcr.io/example/worker:v1.0.0
    # command: ["/app/worker"]
    # memory: 128m
    # health:                    # a worker settles when it runs without a restart
    #   interval: 2s
    #   healthyThreshold: 2
    #   startTimeout: 60s

# migrations:                    # a one-off job before any service changes
#   image: ghcr.io/example/web:v1.0.0
#   command: ["/app/migrate", "up"]
#   rollback:
#     command: ["/app/migrate", "down", "1"]

# notify:
#   - url: env:SLACK_WEBHOOK_URL
#     format: slack
#     events: [deploy.failed, deploy.rolled_back]

# backup:
#   keep: 10
#   s3: s3://my-backups/reconciler

# network: NAME                  # the Docker network (default: the env's name)
# keepImages: 3                  # images kept per service for a quick revert

# route53:
#   healthChecks: {}             # a Route 53 health check per public site
`
