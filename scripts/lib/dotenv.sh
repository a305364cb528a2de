# Sourced by the scripts: reads a .env file (KEY=value lines, # comments)
# into the environment, never overriding a variable the environment has.
# Values are taken literally (no expansion); a value in single quotes loses
# its quotes, as with Compose (.env.example quotes the one with a $ in it).

# dotenv_load FILE: nothing happens when FILE does not exist.
dotenv_load() {
  [ -f "$1" ] || return 0
  local key value
  while IFS='=' read -r key value; do
    case $key in ''|'#'*) continue ;; esac
    case $value in \'*\') value=${value#\'}; value=${value%\'} ;; esac
    [ -n "${!key+x}" ] || export "$key=$value"
  done < "$1"
}
