#!/usr/bin/env bash
# Spark GPU discovery script: prints the GPU addresses of this host as Spark expects.
# Same contract as Spark's examples/src/main/scripts/getGpusResources.sh.
ADDRS=$(nvidia-smi --query-gpu=index --format=csv,noheader | sed -e ':a' -e 'N' -e '$!ba' -e 's/\n/","/g')
echo "{\"name\": \"gpu\", \"addresses\":[\"$ADDRS\"]}"
