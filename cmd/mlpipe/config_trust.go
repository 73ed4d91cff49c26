package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// A project's mlpipe.yaml arrives with the project: a cloned repository, a
// colleague's directory. Like git's safe.directory, such a file may set how
// a pipeline runs (parallelism, shm size, the experiment's name) but not,
// unless the user trusts the directory, where credentials and artifacts go
// or how isolated steps are. The user's own configuration
// ($XDG_CONFIG_HOME/mlpipe/config.yaml, --config, flags, environment) may
// set everything.

// guardedKeys are the settings a project file may set only in a trusted
// directory.
var guardedKeys = []string{
	// where credentials, artifacts and the history go
	"kfp.host", "kfp.token_file", "kfp.cookie", "kfp.ca_file", "kfp.user_id",
	"minio.endpoint", "minio.access_key", "minio.secret_key", "minio.secure", "minio.ca_file", "minio.path_style", "minio.verify",
	"pipeline_root", "state_dir", "docker.registry",
	// isolation of steps and of GPUs
	"executor", "docker.user", "docker.pids_limit", "process.pass_env", "gpu.lock_dir", "gpu.mock",
	"limits.output_parameter", "limits.log", "python.pip_conf", "python.interpreter",
	"kubernetes.secrets_dir", "kubernetes.config_maps_dir", "kubernetes.pvcs",
	// the trust list itself
	"trusted_projects",
}

const projectConfig = "mlpipe.yaml"

// checkProjectConfig refuses a project mlpipe.yaml that sets guarded keys
// in a directory the user has not trusted. trusted is the user's list
// (trusted_projects of the user's configuration, MLPIPE_TRUSTED_PROJECTS).
func checkProjectConfig(path string, content []byte, trusted []string) error {
	pv := viper.New()
	pv.SetConfigType("yaml")
	if err := pv.ReadConfig(bytes.NewReader(content)); err != nil {
		return usageError{fmt.Errorf("read config %s: %w", path, err)}
	}
	var set []string
	for _, k := range guardedKeys {
		if pv.IsSet(k) {
			set = append(set, k)
		}
	}
	if len(set) == 0 {
		return nil
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	for _, t := range trusted {
		if t == "*" {
			return nil
		}
		if real, err := filepath.EvalSymlinks(t); err == nil && real == dir {
			return nil
		}
	}
	return usagef("%s sets %s: a project's configuration may not choose where credentials, artifacts and the history go or weaken the isolation of steps unless you trust the directory; "+
		"if you do, add it to trusted_projects in %s (trusted_projects: [%s]) or to MLPIPE_TRUSTED_PROJECTS, or pass the settings as flags or environment variables",
		filepath.Join(dir, projectConfig), strings.Join(set, ", "), userConfigPath(), dir)
}

func userConfigPath() string {
	if d := xdgConfigHome(); d != "" {
		return filepath.Join(d, "mlpipe", "config.yaml")
	}
	return "$XDG_CONFIG_HOME/mlpipe/config.yaml"
}

// settingSource says where the value of a key comes from: "flag --x",
// "env NAME", a configuration file, or "default".
func settingSource(key string, flags *pflag.FlagSet, envs []string, files []fileSettings) string {
	if flags != nil {
		for flag, k := range flagKeys {
			if k == key {
				if f := flags.Lookup(flag); f != nil && f.Changed {
					return "flag --" + flag
				}
			}
		}
	}
	for _, e := range envs {
		if _, ok := os.LookupEnv(e); ok {
			return "env " + e
		}
	}
	// The last file that sets it wins (project over user).
	for i := len(files) - 1; i >= 0; i-- {
		if files[i].v.IsSet(key) {
			return files[i].name
		}
	}
	return "default"
}

// fileSettings is one configuration file read for sources.
type fileSettings struct {
	name string
	v    *viper.Viper
}

// bannerKeys are the settings a run's banner names with their source when
// they are not the defaults.
var bannerKeys = []string{"executor", "pipeline_root", "state_dir", "minio.endpoint", "kfp.host", "max_parallel", "process.pass_env", "docker.user"}

// envNames are the environment variables that can set key.
func envNames(key string, binds map[string][]string) []string {
	if e, ok := binds[key]; ok {
		return e
	}
	return []string{"MLPIPE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))}
}

// sourcesLine is the banner's "settings:" line, or "" when everything is
// a default.
func (c *Config) sourcesLine() string {
	var parts []string
	for _, k := range bannerKeys {
		src := c.sources[k]
		if src == "" || src == "default" {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%s (%s)", k, c.values[k], src))
	}
	if len(parts) == 0 {
		return ""
	}
	slices.Sort(parts)
	return "settings: " + strings.Join(parts, ", ")
}
