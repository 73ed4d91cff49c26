package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/kfp"
	"github.com/mlpipe/mlpipe/kfpir"
)

type submitOptions struct {
	params         []string
	runName        string
	wait           bool
	timeout        time.Duration
	pollInterval   time.Duration
	uploadOnly     bool
	versionName    string
	push           bool
	insecure       bool
	cookie         string
	userID         string
	pipelineRoot   string
	serviceAccount string
	noCache        bool
	connectTimeout time.Duration
	output         string
}

func newSubmitCmd(a *app) *cobra.Command {
	var o submitOptions
	cmd := &cobra.Command{
		Use:   "submit PIPELINE|IR --host URL",
		Short: "Run a pipeline on a Kubeflow Pipelines cluster (REST API v2beta1)",
		Long: `Send a pipeline.yaml (compiled first) or a KFP IR file to a Kubeflow Pipelines cluster:
the very IR that "mlpipe run" executes. The run goes to an experiment (created when
missing; default "Default"), with the spec inline, and its id and UI address are printed.
With --wait, mlpipe follows the run and its tasks and exits with its outcome. With
--upload-only, the pipeline is stored instead (a new version when a pipeline of that
name exists; --version-name names it, the first version of a new pipeline too). A
pipeline package (.zip or .tar.gz holding one IR file) is accepted like the file.

As kfp.Client: the namespace comes from ~/.config/kfp/context.json when neither flag
nor environment gives one; KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME overrides the
experiment; --no-cache turns caching off for every task of the run.

The host is the API server (http://localhost:8888 after a port-forward) or the UI
(https://kubeflow.example.com/pipeline); https:// is assumed without a scheme. On
multi-user clusters pass --namespace (your profile namespace) and a credential: a
bearer token file (re-read before every request), a session cookie, or --user-id.

Exit codes: 0 submitted (or, with --wait, succeeded), 2 invalid input,
3 the run failed or was cancelled, 130 interrupted.`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSubmit(cmd.Context(), a, o, args[0])
		},
	}
	f := cmd.Flags()
	f.String("host", "", "KFP API server or UI address (env KF_PIPELINES_ENDPOINT)")
	f.String("namespace", "", "user namespace on multi-user clusters (env KF_PIPELINES_NAMESPACE)")
	f.String("token-file", "", "file holding a bearer token, re-read before every request (env KF_PIPELINES_SA_TOKEN_PATH)")
	f.String("experiment", "", "experiment of the run, created when missing (env KF_PIPELINES_DEFAULT_EXPERIMENT_NAME; default Default)")
	f.String("ca-file", "", "PEM bundle of the CAs to trust for the host")
	f.StringArrayVarP(&o.params, "param", "p", nil, "pipeline parameter NAME=VALUE (repeatable)")
	f.StringVar(&o.runName, "run-name", "", `run name (default "<file name> <local time>")`)
	f.BoolVar(&o.wait, "wait", false, "follow the run and exit with its outcome")
	f.DurationVar(&o.timeout, "timeout", 0, "with --wait, stop waiting after this long (the run goes on)")
	f.DurationVar(&o.pollInterval, "poll-interval", kfp.DefaultPollInterval, "with --wait, how often to ask for the run's state")
	f.BoolVar(&o.uploadOnly, "upload-only", false, "store the pipeline (a new version if it exists) without running it")
	f.StringVar(&o.versionName, "version-name", "", "with --upload-only, the name of a new version (default: <pipeline>-<time>)")
	f.BoolVar(&o.push, "push", false, "push images that exist only on this machine to docker.registry and pin them by digest")
	f.BoolVar(&o.insecure, "insecure-skip-verify", false, "do not verify the host's TLS certificate")
	f.StringVar(&o.cookie, "cookie", "", "Cookie header to send, e.g. authservice_session=... (env MLPIPE_KFP_COOKIE)")
	f.StringVar(&o.userID, "user-id", "", "kubeflow-userid header to send (direct access to the API server; env MLPIPE_KFP_USER_ID)")
	f.StringVar(&o.pipelineRoot, "pipeline-root", "", "where the run's artifacts go on the cluster (default: the cluster's)")
	f.StringVar(&o.serviceAccount, "service-account", "", "Kubernetes service account the run's pods use (default: the cluster's)")
	f.BoolVar(&o.noCache, "no-cache", false, "run every task, as kfp.Client's enable_caching=False (cachingOptions.enableCache false in the submitted spec)")
	f.DurationVar(&o.connectTimeout, "connect-timeout", 30*time.Second, "how long to retry the first contact while the API server starts")
	f.StringVar(&o.output, "output", "text", "text or json (with --wait: one JSON event per line, as mlpipe run)")
	return cmd
}

func (o submitOptions) check() error {
	switch {
	case o.uploadOnly && (o.wait || o.runName != "" || len(o.params) > 0 || o.pipelineRoot != "" || o.serviceAccount != "" || o.noCache):
		return usagef("--upload-only stores the pipeline without a run: -p, --run-name, --wait, --pipeline-root, --service-account and --no-cache do not apply")
	case o.output != "text" && o.output != "json":
		return usagef("--output must be text or json")
	case o.connectTimeout < 0:
		return usagef("--connect-timeout must not be negative")
	case !o.uploadOnly && o.versionName != "":
		return usagef("--version-name goes with --upload-only")
	case o.timeout < 0:
		return usagef("--timeout must not be negative")
	case o.timeout > 0 && !o.wait:
		return usagef("--timeout goes with --wait")
	case o.pollInterval <= 0:
		return usagef("--poll-interval must be positive")
	}
	return nil
}

func runSubmit(ctx context.Context, a *app, o submitOptions, path string) error {
	if err := o.check(); err != nil {
		return err
	}
	if a.cfg.KFP.Host == "" {
		return usagef("submit: no KFP host: pass --host URL or set KF_PIPELINES_ENDPOINT")
	}
	ir, err := openSubmitSource(path)
	if err != nil {
		return err
	}
	// An upload needs no parameter values (required ones included): the
	// server stores the pipeline as it is.
	var params map[string]any
	if !o.uploadOnly {
		if params, err = submitParams(ir, o.params); err != nil {
			return err
		}
	}
	spec := kfpir.CopyDoc(ir.Raw)
	if err := prepareImages(ctx, a, ir, spec, o.push); err != nil {
		return err
	}
	if o.noCache {
		disableCaching(spec)
	}
	namespace := a.cfg.KFP.Namespace
	if namespace == "" {
		namespace = kfpContextNamespace()
	}
	c, err := kfp.New(kfp.Options{
		Host:               a.cfg.KFP.Host,
		Namespace:          namespace,
		TokenFile:          a.cfg.KFP.TokenFile,
		Cookie:             cmp.Or(o.cookie, a.cfg.KFP.Cookie),
		UserID:             cmp.Or(o.userID, a.cfg.KFP.UserID),
		CAFile:             a.cfg.KFP.CAFile,
		InsecureSkipVerify: o.insecure,
		Logger:             a.log,
	})
	if err != nil {
		return err
	}
	h, err := waitForServer(ctx, c, o.connectTimeout, func(msg string) { fmt.Fprintln(a.stderr, "mlpipe: "+msg) })
	if err != nil {
		return err
	}
	if h.MultiUser && c.Namespace() == "" {
		return usagef("KFP at %s is multi-user: pass --namespace with your profile namespace (or set KF_PIPELINES_NAMESPACE)", c.Host())
	}
	if o.uploadOnly {
		return uploadPipeline(ctx, a, c, ir, spec, o)
	}
	return submitRun(ctx, a, c, ir, spec, params, o)
}

// submitParams resolves -p flags against the pipeline's inputs and keeps
// only those given, typed: the server applies the defaults itself.
func submitParams(ir *kfpir.IR, flags []string) (map[string]any, error) {
	text, err := kfpir.ParseParamFlags(flags)
	if err != nil {
		return nil, err
	}
	all, err := kfpir.ResolveParams(ir, text, nil)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(text))
	for k := range text {
		out[k] = all[k]
	}
	return out, nil
}

// submitRun creates the run and, with --wait, follows it.
func submitRun(ctx context.Context, a *app, c *kfp.Client, ir *kfpir.IR, spec, params map[string]any, o submitOptions) error {
	exp, created, err := c.EnsureExperiment(ctx, experimentName(a.cfg.KFP.Experiment))
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(a.stderr, "mlpipe: created experiment %s\n", exp.DisplayName)
	}
	name := o.runName
	if name == "" {
		name = filepath.Base(ir.File) + " " + time.Now().Format("2006-01-02 15-04-05")
	}
	r, err := c.CreateRun(ctx, kfp.RunRequest{
		DisplayName:    name,
		ExperimentID:   exp.ExperimentID,
		PipelineSpec:   spec,
		PlatformSpec:   ir.Platform,
		Parameters:     params,
		PipelineRoot:   o.pipelineRoot,
		ServiceAccount: o.serviceAccount,
	})
	if err != nil {
		return err
	}
	url := kfp.RunURL(uiHost(c), r.RunID)
	ev := newRemoteEvents(a, o.output == "json", r.RunID)
	ev.submitted(exp.DisplayName, url)
	if !o.wait {
		return nil
	}
	final, err := c.WaitRun(ctx, r.RunID, kfp.WaitOptions{
		Interval: o.pollInterval,
		Timeout:  o.timeout,
		OnPoll:   ev.poll,
		OnRetry: func(err error) {
			a.log.WarnContext(ctx, "polling the run failed; retrying", "run_id", r.RunID, "err", err)
		},
	})
	var te *kfp.WaitTimeoutError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("%w: stopped waiting; the run goes on: %s", te, url)
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(a.stderr, "mlpipe: stopped waiting; the run goes on: %s\n", url)
		return err
	case err != nil:
		return err
	}
	switch final.State {
	case kfp.StateSucceeded, kfp.StateSkipped:
		return nil
	}
	return &remoteRunError{RunID: final.RunID, State: final.State, URL: url, Reason: failureReason(final)}
}

// remoteRunError is a run on the cluster that ended FAILED or CANCELED:
// exit code 3.
type remoteRunError struct {
	RunID  string
	State  kfp.RuntimeState
	URL    string
	Reason string
}

func (e *remoteRunError) Error() string {
	msg := fmt.Sprintf("run %s %s", e.RunID, e.State)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg + "; see " + e.URL
}

// ExitCode is 3: the run ended with a failure.
func (e *remoteRunError) ExitCode() int { return 3 }

// failureReason names the failed tasks of a run (the innermost ones: a
// DAG whose task failed fails too), or its error.
func failureReason(r *kfp.Run) string {
	var parts []string
	if r.RunDetails != nil {
		failedChild := map[string]bool{}
		for _, t := range r.RunDetails.TaskDetails {
			if t.State == kfp.StateFailed && t.ParentTaskID != "" {
				failedChild[t.ParentTaskID] = true
			}
		}
		for _, t := range r.RunDetails.TaskDetails {
			if t.State != kfp.StateFailed || t.DisplayName == "" || failedChild[t.TaskID] {
				continue
			}
			s := "task " + t.DisplayName + " failed"
			if t.Error != nil && t.Error.Message != "" {
				s += " (" + t.Error.Message + ")"
			}
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 && r.Error != nil && r.Error.Message != "" {
		parts = append(parts, r.Error.Message)
	}
	return strings.Join(parts, ", ")
}

// uploadPipeline stores the pipeline: created when no pipeline has its
// name in the namespace, otherwise as a new version. As kfp.Client's
// upload_pipeline, a new pipeline's first version is named after it,
// unless --version-name names it (upload_pipeline_version).
func uploadPipeline(ctx context.Context, a *app, c *kfp.Client, ir *kfpir.IR, spec map[string]any, o submitOptions) error {
	name := ir.Spec.GetPipelineInfo().GetName()
	if err := kfp.CheckPipelineName(name); err != nil {
		return err
	}
	file, err := kfp.PackageYAML(spec, ir.Platform)
	if err != nil {
		return err
	}
	desc := ""
	if info, ok := spec["pipelineInfo"].(map[string]any); ok {
		desc, _ = info["description"].(string)
	}
	up := kfp.Upload{Name: o.versionName, Description: desc, File: file}
	p, err := c.PipelineByName(ctx, name)
	created := false
	switch {
	case errors.Is(err, kfp.ErrNotFound) && o.versionName == "":
		p, err = c.UploadPipeline(ctx, kfp.Upload{Name: name, Description: desc, File: file})
		if err == nil {
			v, err := c.LatestPipelineVersion(ctx, p.PipelineID)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "created pipeline %s (%s), version %s (%s)\n%s\n", name, p.PipelineID,
				v.Name, v.PipelineVersionID, c.PipelineVersionURL(p.PipelineID, v.PipelineVersionID))
			return nil
		}
	case errors.Is(err, kfp.ErrNotFound):
		p, err = c.CreatePipeline(ctx, name, desc)
		created = err == nil
	}
	if errors.Is(err, kfp.ErrConflict) {
		// Created meanwhile by someone else: add a version to it.
		p, err = c.PipelineByName(ctx, name)
	}
	if err != nil {
		return err
	}
	if up.Name == "" {
		now := time.Now()
		up.Name = fmt.Sprintf("%s-%s-%03d", name, now.Format("20060102-150405"), now.Nanosecond()/1e6)
	}
	exists := &kfp.InputError{Msg: fmt.Sprintf("version %q of pipeline %q already exists: choose another --version-name", up.Name, name)}
	switch _, err := c.PipelineVersionByName(ctx, p.PipelineID, up.Name); {
	case err == nil:
		return exists
	case !errors.Is(err, kfp.ErrNotFound):
		return err
	}
	v, err := c.UploadPipelineVersion(ctx, p.PipelineID, up)
	if err != nil && created {
		// Leave no empty pipeline behind: the upload is all or nothing.
		if derr := c.DeletePipeline(context.WithoutCancel(ctx), p.PipelineID); derr != nil {
			a.log.WarnContext(ctx, "remove the pipeline created for a version that failed", "pipeline_id", p.PipelineID, "err", derr)
		}
	}
	if errors.Is(err, kfp.ErrConflict) {
		return exists // uploaded meanwhile
	}
	if err != nil {
		return err
	}
	verb := "added version %s (%s) to pipeline %s (%s)\n%s\n"
	if created {
		verb = "created version %s (%s) of the new pipeline %s (%s)\n%s\n"
	}
	fmt.Fprintf(a.stdout, verb, v.Name, v.PipelineVersionID, name, p.PipelineID, c.PipelineVersionURL(p.PipelineID, v.PipelineVersionID))
	return nil
}

// uiHost is where run links point: KF_PIPELINES_UI_ENDPOINT, else the host,
// as kfp.Client.
func uiHost(c *kfp.Client) string {
	ui := os.Getenv("KF_PIPELINES_UI_ENDPOINT")
	if ui == "" {
		return c.Host()
	}
	if !strings.Contains(ui, "://") {
		ui = "http://" + ui
	}
	return strings.TrimRight(ui, "/")
}
