# "send PUB_ID -" reads the message from stdin, as the usage says, also
# after "--"; a lone dash is sent through stdin. Every command must succeed
# (run.sh runs the case under set -e -o pipefail).
init_queue
printf 'from stdin\n' | ctl --config config.json send pub -
printf -- '-' | ctl --config config.json send pub
printf 'after dashes' | ctl --config config.json send pub -- -
ctl --config config.json send pub - </dev/null
ctl --config config.json send pub -- --dash
ctl --config config.json receive sub | cut -d ' ' -f 1,3-
