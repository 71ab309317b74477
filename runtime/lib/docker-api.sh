# shellcheck shell=bash
# The Docker Engine API over its unix socket, through curl: the restore job stops and starts
# the application containers of the host it runs on without a docker CLI in the image.
# Sourced by the restore-job command.

docker_socket=${EDMS_BACKUP_DOCKER_SOCKET:-/var/run/docker.sock}

# docker_api METHOD PATH: prints the HTTP status; the body goes to docker_api_body.
docker_api() {
  local status
  status=$(curl --silent --show-error --max-time 120 --unix-socket "$docker_socket" \
    --request "$1" --output /dev/fd/3 --write-out '%{http_code}' "http://docker/v1.41$2" 3>"$docker_api_body") ||
    die "the Docker API at $docker_socket does not answer: mount the host's Docker socket there (EDMS_BACKUP_DOCKER_SOCKET)"
  printf '%s' "$status"
}

# container_running NAME: true when NAME exists and runs.
container_running() {
  local status
  status=$(docker_api GET "/containers/$1/json")
  [[ "$status" == 200 ]] && jq -e '.State.Running == true' "$docker_api_body" >/dev/null 2>&1
}

# container_stop NAME / container_start NAME: true when done or already so.
container_stop() {
  local status
  status=$(docker_api POST "/containers/$1/stop")
  [[ "$status" == 204 || "$status" == 304 ]]
}

container_start() {
  local status
  status=$(docker_api POST "/containers/$1/start")
  [[ "$status" == 204 || "$status" == 304 ]]
}
