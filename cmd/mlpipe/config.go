package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is every setting mlpipe reads, resolved once from flags, env
// (MLPIPE_*, and the ecosystem's own variables), mlpipe.yaml in the working
// directory, $XDG_CONFIG_HOME/mlpipe/config.yaml and defaults, in that
// order of precedence.
type Config struct {
	StateDir     string `mapstructure:"state_dir"`
	LogLevel     string `mapstructure:"log_level"`
	Executor     string `mapstructure:"executor"`
	MaxParallel  int    `mapstructure:"max_parallel"`
	PipelineRoot string `mapstructure:"pipeline_root"`
	Minio        struct {
		Endpoint     string `mapstructure:"endpoint"`
		AccessKey    string `mapstructure:"access_key"`
		SecretKey    string `mapstructure:"secret_key"`
		Secure       bool   `mapstructure:"secure"`
		Region       string `mapstructure:"region"`
		CAFile       string `mapstructure:"ca_file"`
		PathStyle    bool   `mapstructure:"path_style"`
		CreateBucket bool   `mapstructure:"create_bucket"`
		// RequestTimeout is how long a request may make no progress
		// before it is retried (a frozen server); Retries how often.
		RequestTimeout time.Duration `mapstructure:"request_timeout"`
		Retries        int           `mapstructure:"retries"`
		// Verify is how downloads are verified: "checksum" (the S3
		// CRC64NVME sealed with the checksum key, else SHA-256) or
		// "sha256" (always hash: for buckets others can write to).
		Verify string `mapstructure:"verify"`
	} `mapstructure:"minio"`
	KFP struct {
		Host       string `mapstructure:"host"`
		Namespace  string `mapstructure:"namespace"`
		TokenFile  string `mapstructure:"token_file"`
		Experiment string `mapstructure:"experiment"`
		CAFile     string `mapstructure:"ca_file"`
		Cookie     string `mapstructure:"cookie"`
		UserID     string `mapstructure:"user_id"`
	} `mapstructure:"kfp"`
	GPU struct {
		// LockDir "" chooses: the owner's shared directory when set up
		// (or when running as root), else one of the user's own.
		LockDir string `mapstructure:"lock_dir"`
		Mock    string `mapstructure:"mock"`
		// Machine policy (see machineConfigPath); a user's own config can
		// only tighten it.
		Exclude     []string      `mapstructure:"exclude"`
		MaxPerUser  int           `mapstructure:"max_per_user"`
		StarveAfter time.Duration `mapstructure:"starve_after"`
	} `mapstructure:"gpu"`
	// machine is the machine-wide configuration file read, if any, and
	// machineLockDir the lease directory it sets.
	machine, machineLockDir string
	// Limits on what a step writes: sizes as Kubernetes quantities.
	Limits struct {
		OutputParameter string `mapstructure:"output_parameter"`
		Log             string `mapstructure:"log"`
		// Parsed from the strings above by loadConfig.
		outputParameterBytes, logBytes int64
	} `mapstructure:"limits"`
	Process struct {
		// PassEnv names more variables of mlpipe's environment that
		// process steps get (NAME or NAME_* prefixes).
		PassEnv []string `mapstructure:"pass_env"`
	} `mapstructure:"process"`
	// TrustedProjects are directories whose mlpipe.yaml may set guarded
	// settings (config_trust.go); read from the user's configuration only.
	TrustedProjects []string `mapstructure:"trusted_projects"`
	// sources and values of the banner's settings (sourcesLine).
	sources, values map[string]string
	// Python: how the packages of KFP Python function components are
	// installed ahead of their steps (derived images, virtual
	// environments).
	Python struct {
		// PipConf is a pip.conf the installs use (private indexes).
		PipConf string `mapstructure:"pip_conf"`
		// Interpreter makes the process executor's virtual environments
		// (default python3 on PATH).
		Interpreter string `mapstructure:"interpreter"`
		// Prepare false runs the components as written (their prologue
		// pip-installs in every step).
		Prepare bool `mapstructure:"prepare"`
		// KeepPrologue runs a prepared component's pip prologue anyway
		// (it finds everything installed; costs a pip start-up per step).
		KeepPrologue bool `mapstructure:"keep_prologue"`
	} `mapstructure:"python"`
	// Kubernetes: the local stand-ins for what the IR's kfp-kubernetes
	// platform spec names (package platform).
	Kubernetes struct {
		// SecretsDir holds secrets as <dir>/<name>/<key> files or
		// <dir>/<name>.env (default $XDG_CONFIG_HOME/mlpipe/secrets).
		SecretsDir string `mapstructure:"secrets_dir"`
		// ConfigMapsDir likewise for config maps (default
		// $XDG_CONFIG_HOME/mlpipe/configmaps).
		ConfigMapsDir string `mapstructure:"config_maps_dir"`
		// PVCs maps PVC names to host directories; other PVCs are
		// directories under <state dir>/pvcs/.
		PVCs map[string]string `mapstructure:"pvcs"`
		// Namespace is what metadata.namespace reads (default "local").
		Namespace string `mapstructure:"namespace"`
	} `mapstructure:"kubernetes"`
	Docker struct {
		ShmSize   string `mapstructure:"shm_size"`
		PidsLimit int64  `mapstructure:"pids_limit"`
		User      string `mapstructure:"user"`
		Registry  string `mapstructure:"registry"`
		// Builder: "" (BuildKit when the daemon has it), "buildkit" or
		// "legacy".
		Builder string `mapstructure:"builder"`
	} `mapstructure:"docker"`
}

// flagKeys maps command-line flags to configuration keys.
var flagKeys = map[string]string{
	"state-dir":     "state_dir",
	"log-level":     "log_level",
	"executor":      "executor",
	"max-parallel":  "max_parallel",
	"pipeline-root": "pipeline_root",
	"host":          "kfp.host",
	"namespace":     "kfp.namespace",
	"token-file":    "kfp.token_file",
	"experiment":    "kfp.experiment",
	"ca-file":       "kfp.ca_file",
}

func defaultStateDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "mlpipe")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "mlpipe")
	}
	return filepath.Join(os.TempDir(), "mlpipe")
}

// loadConfig resolves the configuration for one command.
func loadConfig(configFile string, flags *pflag.FlagSet) (*Config, error) {
	v := viper.New()
	setDefaults(v)
	v.SetEnvPrefix("MLPIPE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for k, envs := range envBinds {
		if err := v.BindEnv(append([]string{k}, envs...)...); err != nil {
			return nil, err
		}
	}
	machine, err := readMachineConfig(v)
	if err != nil {
		return nil, err
	}
	read, err := readConfigFiles(v, configFile)
	if err != nil {
		return nil, err
	}
	if flags != nil {
		flags.VisitAll(func(f *pflag.Flag) {
			if key, ok := flagKeys[f.Name]; ok && f.Changed {
				_ = v.BindPFlag(key, f)
			}
		})
	}
	cfg := &Config{}
	if err := v.Unmarshal(cfg); err != nil {
		return nil, usageError{fmt.Errorf("configuration: %w", err)}
	}
	cfg.sources, cfg.values = map[string]string{}, map[string]string{}
	for _, k := range bannerKeys {
		cfg.sources[k] = settingSource(k, flags, envNames(k, envBinds), read)
		cfg.values[k] = fmt.Sprint(v.Get(k))
	}
	cfg.applyMachinePolicy(machine)
	if err := cfg.finish(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// systemConfig is where the workstation's owner writes the machine policy.
const systemConfig = "/etc/mlpipe/config.yaml"

// machineConfigPath is the workstation owner's configuration:
// /etc/mlpipe/config.yaml when it exists (a user's environment cannot
// replace it), else MLPIPE_MACHINE_CONFIG (machines without one, tests).
func machineConfigPath() string {
	if _, err := os.Stat(systemConfig); err == nil {
		return systemConfig
	}
	if p := os.Getenv("MLPIPE_MACHINE_CONFIG"); p != "" {
		return p
	}
	return systemConfig
}

// readMachineConfig merges the machine-wide configuration into v, below
// every other source, and returns it on its own for the policy it sets (nil
// when there is none).
func readMachineConfig(v *viper.Viper) (*viper.Viper, error) {
	p := machineConfigPath()
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, usageError{fmt.Errorf("read machine config %s: %w", p, err)}
	}
	mv := viper.New()
	mv.SetConfigType("yaml")
	if err := mv.ReadConfig(bytes.NewReader(b)); err != nil {
		return nil, usageError{fmt.Errorf("read machine config %s: %w", p, err)}
	}
	v.SetConfigType("yaml")
	if err := v.MergeConfig(bytes.NewReader(b)); err != nil {
		return nil, usageError{fmt.Errorf("read machine config %s: %w", p, err)}
	}
	mv.Set("_path", p)
	return mv, nil
}

// applyMachinePolicy keeps what the workstation's owner decided whatever
// the user's own settings say: the lease directory, the excluded GPUs
// (the user's add to them) and the per-user limit (the user's may only be
// lower).
func (cfg *Config) applyMachinePolicy(mv *viper.Viper) {
	if mv == nil {
		return
	}
	cfg.machine = mv.GetString("_path")
	if d := mv.GetString("gpu.lock_dir"); d != "" {
		cfg.GPU.LockDir, cfg.machineLockDir = d, d
	}
	for _, x := range mv.GetStringSlice("gpu.exclude") {
		if !slices.Contains(cfg.GPU.Exclude, x) {
			cfg.GPU.Exclude = append(cfg.GPU.Exclude, x)
		}
	}
	if m := mv.GetInt("gpu.max_per_user"); m > 0 && (cfg.GPU.MaxPerUser <= 0 || cfg.GPU.MaxPerUser > m) {
		cfg.GPU.MaxPerUser = m
	}
	// A longer wait before reservations would let this user's requests
	// overtake the others' for longer: only a shorter one is taken.
	if d := mv.GetDuration("gpu.starve_after"); d > 0 && (cfg.GPU.StarveAfter <= 0 || cfg.GPU.StarveAfter > d) {
		cfg.GPU.StarveAfter = d
	}
}

// setDefaults sets every key's default.
func setDefaults(v *viper.Viper) {
	v.SetDefault("state_dir", defaultStateDir())
	v.SetDefault("log_level", "warn")
	v.SetDefault("executor", "auto")
	v.SetDefault("max_parallel", runtime.NumCPU())
	v.SetDefault("pipeline_root", "")
	v.SetDefault("minio.secure", true)
	v.SetDefault("minio.region", "")
	v.SetDefault("kfp.experiment", "")
	v.SetDefault("gpu.lock_dir", "")
	v.SetDefault("python.pip_conf", "")
	v.SetDefault("kubernetes.secrets_dir", filepath.Join(xdgConfigHome(), "mlpipe", "secrets"))
	v.SetDefault("kubernetes.config_maps_dir", filepath.Join(xdgConfigHome(), "mlpipe", "configmaps"))
	v.SetDefault("kubernetes.pvcs", map[string]string{})
	v.SetDefault("kubernetes.namespace", "local")
	v.SetDefault("python.interpreter", "")
	v.SetDefault("python.prepare", true)
	v.SetDefault("python.keep_prologue", false)
	v.SetDefault("gpu.exclude", []string{})
	v.SetDefault("gpu.max_per_user", 0)
	v.SetDefault("gpu.starve_after", 30*time.Second)
	v.SetDefault("gpu.mock", "")
	v.SetDefault("docker.shm_size", "1g")
	v.SetDefault("docker.pids_limit", 4096)
	v.SetDefault("process.pass_env", []string{})
	v.SetDefault("limits.output_parameter", "4Mi")
	v.SetDefault("limits.log", "256Mi")
	v.SetDefault("docker.user", "")
	v.SetDefault("docker.registry", "")
	v.SetDefault("docker.builder", "")
	for _, k := range []string{"minio.endpoint", "minio.ca_file", "minio.path_style", "minio.create_bucket", "kfp.host", "kfp.namespace", "kfp.token_file", "kfp.ca_file", "kfp.cookie", "kfp.user_id"} {
		v.SetDefault(k, "")
	}
	v.SetDefault("minio.path_style", true)
	v.SetDefault("minio.create_bucket", false)
	v.SetDefault("minio.request_timeout", 30*time.Second)
	v.SetDefault("minio.verify", "checksum")
	v.SetDefault("minio.retries", 4)
}

// envBinds are the ecosystem's own variables for some keys, after
// mlpipe's.
var envBinds = map[string][]string{
	"minio.access_key": {"MLPIPE_MINIO_ACCESS_KEY", "AWS_ACCESS_KEY_ID"},
	"minio.secret_key": {"MLPIPE_MINIO_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"},
	"minio.region":     {"MLPIPE_MINIO_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"},
	"kfp.host":         {"MLPIPE_KFP_HOST", "KF_PIPELINES_ENDPOINT"},
	"kfp.token_file":   {"MLPIPE_KFP_TOKEN_FILE", "KF_PIPELINES_SA_TOKEN_PATH"},
	"kfp.experiment":   {"MLPIPE_KFP_EXPERIMENT", "KF_PIPELINES_DEFAULT_EXPERIMENT_NAME"},
	"kfp.namespace":    {"MLPIPE_KFP_NAMESPACE", "KF_PIPELINES_NAMESPACE"},
	"gpu.mock":         {"MLPIPE_GPU_MOCK"},
	"gpu.lock_dir":     {"MLPIPE_GPU_LOCK_DIR"},
}

// readConfigFiles merges the configuration files into v: configFile when
// given, else the user's configuration and then the project's mlpipe.yaml
// (checked by checkProjectConfig). It returns the files read, for the
// sources of settings.
func readConfigFiles(v *viper.Viper, configFile string) ([]fileSettings, error) {
	v.SetConfigType("yaml")
	var read []fileSettings // for the sources of settings
	// Each file is read once: what is checked is what is used.
	readFile := func(f string, b []byte) error {
		fv := viper.New()
		fv.SetConfigType("yaml")
		if err := fv.ReadConfig(bytes.NewReader(b)); err != nil {
			return usageError{fmt.Errorf("read config %s: %w", f, err)}
		}
		read = append(read, fileSettings{name: f, v: fv})
		if err := v.MergeConfig(bytes.NewReader(b)); err != nil {
			return usageError{fmt.Errorf("read config %s: %w", f, err)}
		}
		return nil
	}
	load := func(f string) ([]byte, error) {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, usageError{fmt.Errorf("read config %s: %w", f, err)}
		}
		return b, nil
	}
	if configFile != "" {
		b, err := load(configFile)
		if err != nil {
			return nil, err
		}
		if err := readFile(configFile, b); err != nil {
			return nil, err
		}
	} else {
		var trusted []string
		if f := userConfigPath(); fileExists(f) {
			b, err := load(f)
			if err != nil {
				return nil, err
			}
			if err := readFile(f, b); err != nil {
				return nil, err
			}
			trusted = read[0].v.GetStringSlice("trusted_projects")
		}
		if e := os.Getenv("MLPIPE_TRUSTED_PROJECTS"); e != "" {
			trusted = append(trusted, filepath.SplitList(e)...)
		}
		if fileExists(projectConfig) {
			b, err := load(projectConfig)
			if err != nil {
				return nil, err
			}
			if err := checkProjectConfig(projectConfig, b, trusted); err != nil {
				return nil, err
			}
			if err := readFile(projectConfig, b); err != nil {
				return nil, err
			}
		}
	}
	return read, nil
}

// finish checks and completes the settings after they are read.
func (cfg *Config) finish() error {
	if cfg.StateDir == "" {
		cfg.StateDir = defaultStateDir()
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return err
	}
	cfg.StateDir = abs
	if cfg.MaxParallel <= 0 {
		// The default is the number of CPUs: 0 or less was asked for.
		return usagef("max_parallel (--max-parallel) must be at least 1, not %d", cfg.MaxParallel)
	}
	for _, l := range []struct {
		key, val string
		dst      *int64
	}{{"limits.output_parameter", cfg.Limits.OutputParameter, &cfg.Limits.outputParameterBytes}, {"limits.log", cfg.Limits.Log, &cfg.Limits.logBytes}} {
		q, err := kfpir.ParseQuantity(l.val)
		if err != nil || q < 0 {
			return usagef("%s %q is not a size such as 4Mi or 1Gi (0 for no limit on the log)", l.key, l.val)
		}
		*l.dst = int64(q)
	}
	if cfg.Limits.outputParameterBytes == 0 {
		return usagef("limits.output_parameter must be more than 0")
	}
	if cfg.Limits.logBytes == 0 {
		cfg.Limits.logBytes = -1 // no limit
	}
	switch cfg.Executor {
	case "auto", "docker", "process":
	default:
		return usagef("executor must be auto, docker or process, not %q", cfg.Executor)
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func xdgConfigHome() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return d
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".config")
	}
	return ""
}
