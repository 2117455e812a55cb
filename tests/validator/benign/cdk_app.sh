#!/bin/sh
# AWS CDK: synthesize and compare the stacks (no deploy from the sandbox).
set -eu
cd /workspace/infra
cdk synth --quiet
cdk diff 2>&1 | tee /workspace/out/cdk-diff.txt
cdk ls
