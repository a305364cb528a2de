# Sourced by the scripts: reads a .env file (KEY=value lines, # comments)
# into the environment, never overriding a variable the environment has.
# Values are taken literally (no quoting, no expansion), as Compose does.

# dotenv_load FILE: nothing happens when FILE does not exist.
dotenv_load() {
  [ -f "$1" ] || return 0
  local key value
  while IFS='=' read -r key value; do
    case $key in ''|'#'*) continue ;; esac
    [ -n "${!key+x}" ] || export "$key=$value"
  done < "$1"
}
