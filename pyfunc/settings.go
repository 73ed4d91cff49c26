package pyfunc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
)

// SettingVars are the pip settings of the user's environment that mlpipe
// passes to the pip installs it makes for components (private indexes are
// common). Other PIP_* variables are left out, so that what is installed
// does not depend on settings mlpipe does not record.
var SettingVars = []string{"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST", "PIP_NO_INDEX", "PIP_PRE"}

// Settings are the pip settings the installs run with.
type Settings struct {
	// Env holds the SettingVars that are set (values may hold tokens:
	// never log them).
	Env map[string]string
	// ConfigFile is a pip.conf (python.pip_conf in mlpipe's
	// configuration), or "".
	ConfigFile string
}

// SettingsFromEnv reads the SettingVars of the environment; configFile is
// python.pip_conf.
func SettingsFromEnv(configFile string) Settings {
	s := Settings{Env: map[string]string{}, ConfigFile: configFile}
	for _, k := range SettingVars {
		if v, ok := os.LookupEnv(k); ok {
			s.Env[k] = v
		}
	}
	return s
}

// Environ returns the settings as KEY=VALUE, sorted, with PIP_CONFIG_FILE
// set to configPath when there is a config file (the path the file has
// where pip runs), and pip's version check off.
func (s Settings) Environ(configPath string) []string {
	out := []string{"PIP_DISABLE_PIP_VERSION_CHECK=1"}
	for _, k := range SettingVars {
		if v, ok := s.Env[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	if s.ConfigFile != "" {
		out = append(out, "PIP_CONFIG_FILE="+configPath)
	}
	return out
}

// Digest identifies the settings (values and the config file's content)
// without showing them: a changed index rebuilds what was installed from
// the old one.
func (s Settings) Digest() (string, error) {
	h := sha256.New()
	for _, k := range SettingVars {
		if v, ok := s.Env[k]; ok {
			fmt.Fprintf(h, "%s=%q\n", k, v)
		}
	}
	if s.ConfigFile != "" {
		b, err := os.ReadFile(s.ConfigFile)
		if err != nil {
			return "", fmt.Errorf("python.pip_conf: %w", err)
		}
		h.Write([]byte("pip.conf\n"))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FindLinksDirs returns the local directories PIP_FIND_LINKS names (a
// container must see them at the same paths).
func (s Settings) FindLinksDirs() []string {
	var out []string
	for _, f := range strings.Fields(strings.ReplaceAll(s.Env["PIP_FIND_LINKS"], ",", " ")) {
		f = strings.TrimPrefix(f, "file://")
		if strings.HasPrefix(f, "/") {
			if st, err := os.Stat(f); err == nil && st.IsDir() && !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

// InstallError turns a failed pip install into one message that names the
// component, the packages and the setting to change; pip's own output
// (already shown to the user in the step's log) is only searched.
func InstallError(component string, packages, indexes []string, pipOutput []byte, err error) error {
	from := "the default index (PyPI)"
	if len(indexes) > 0 {
		from = strings.Join(indexes, ", ")
	}
	if v := os.Getenv("PIP_INDEX_URL"); v != "" && len(indexes) == 0 {
		from = "PIP_INDEX_URL"
	}
	what := strings.Join(packages, ", ")
	lower := bytes.ToLower(pipOutput)
	network := false
	for _, s := range []string{"no matching distribution", "could not find a version", "failed to establish a new connection",
		"temporary failure in name resolution", "network is unreachable", "connection refused", "name or service not known", "max retries exceeded"} {
		if bytes.Contains(lower, []byte(s)) {
			network = true
			break
		}
	}
	if network {
		return fmt.Errorf("component %s: pip could not get %s from %s (no network, or the index lacks them); "+
			"point pip at an index or a wheel directory that has them: PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, "+
			"or a pip.conf named by python.pip_conf in mlpipe's configuration", component, what, from)
	}
	return fmt.Errorf("component %s: pip install %s failed (its output is above): %w", component, what, err)
}

// IndexesOf returns the --index-url and --extra-index-url values of pip
// arguments (Install.PipArgs of each install).
func IndexesOf(installs [][]string) []string {
	var out []string
	for _, args := range installs {
		for _, a := range args {
			for _, p := range []string{"--index-url=", "--extra-index-url="} {
				if v, ok := strings.CutPrefix(a, p); ok {
					out = append(out, v)
				}
			}
		}
	}
	return out
}
