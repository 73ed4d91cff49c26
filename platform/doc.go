// Package platform reads the kubernetes platform spec of a KFP pipeline
// (the kfp-kubernetes extension) and says what each setting means on one
// workstation.
//
// A KFP IR file may carry a second YAML document, PlatformSpec, that kfpir
// loads as a raw map (kfpir.IR.Platform):
//
//	platforms:
//	  kubernetes:
//	    deploymentSpec:
//	      executors:
//	        exec-train:        # an executor label of the PipelineSpec
//	          secretAsEnv: [...]
//	    pipelineConfig: {...} # run-level; kept raw in Spec.PipelineConfig
//
// The package has three parts:
//
//   - [Parse] turns the document into a [Spec]: one [ExecutorConfig] per
//     executor label, a typed copy of KFP's KubernetesExecutorConfig message.
//     A field of the wrong shape, a missing required field (a mountPath, a
//     secret name) or a bad value (an unknown imagePullPolicy, an unparsable
//     size) is an error, [FieldErrors], each with its full field path:
//     "platforms.kubernetes.deploymentSpec.executors.exec-train.secretAsEnv[0].keyToEnv: must be a list, not a string".
//     A field this package does not know (a newer SDK, a typo) is not an
//     error and is never dropped silently: it is listed in
//     ExecutorConfig.Unknown (or Spec.Unknown outside the executors) and
//     reported as a warning by Local.
//   - [ExecutorConfig.Local] maps one config to the workstation: env vars,
//     read-only mounts, named volumes, empty directories, a /dev/shm size,
//     container labels, a timeout and a pull policy, plus a line for people
//     for every setting: Mapped for what was done, Warnings for what has no
//     local meaning. It is pure apart from reading the local secret and
//     config map stores and writing env-form secrets under the caller's
//     scratch directory.
//   - [IsCreatePVC], [IsDeletePVC], [CreatePVCName] and [DeletePVCName]
//     recognise and name the SDK's kubernetes.CreatePVC / DeletePVC tasks,
//     which the engine runs itself (their images do not exist).
//
// # Fields and their local meaning
//
// Every field of KubernetesExecutorConfig (KFP 2.15–2.17) and what Local
// makes of it. "Warning" means the setting is reported in Local.Warnings,
// naming the task, and otherwise has no effect; nothing is ignored silently.
//
//	field                   local meaning
//	----------------------  ---------------------------------------------------------------
//	secretAsEnv             Env: each keyToEnv entry, read from the local secret store
//	                        (see Secrets below). A missing secret or key is an error
//	                        (wrapping ErrNotFound) unless optional: true, then a Warning.
//	secretAsVolume          Mounts: the secret's directory, read-only at mountPath; an
//	                        env-file secret is written to <scratch>/secret-<name>/, one
//	                        0600 file per key, and that is mounted.
//	configMapAsEnv          as secretAsEnv, from the config map store.
//	configMapAsVolume       as secretAsVolume; files under <scratch>/configmap-<name>/.
//	pvcMount                PVCs: {Name, MountPath, SubPath, HostDir}. The name comes from
//	                        pvcNameParameter, else the deprecated one-of (constant,
//	                        componentInputParameter, taskOutputParameter), through the
//	                        Resolve callback, and must be a DNS-1123 subdomain. HostDir is
//	                        Sources.PVCs[name] when the user mapped it; otherwise the
//	                        executor provides a named volume (a Docker volume, or a
//	                        directory under the state directory).
//	fieldPathAsEnv          Env with synthesised values: metadata.name = Task.PodName or
//	                        <task>-<hash of run and task path> (a DNS label);
//	                        metadata.namespace = Sources.Namespace or "local";
//	                        metadata.uid = a UUID derived from the run and task path;
//	                        metadata.labels['k'] / metadata.annotations['k'] = from
//	                        podMetadata ("" when absent, as in Kubernetes);
//	                        spec.nodeName = Task.NodeName or the host name;
//	                        status.podIP, status.hostIP = 127.0.0.1;
//	                        spec.serviceAccountName = "default". Anything else: Warning,
//	                        the variable is not set.
//	podMetadata             Labels: io.kubeflow.pod.label.<k> and
//	                        io.kubeflow.pod.annotation.<k> (container labels); no env.
//	nodeSelector            Warning: not applicable on one machine.
//	tolerations             Warning: not applicable on one machine.
//	nodeAffinity            Warning: not applicable on one machine.
//	podAffinity             Warning: not applicable on one machine.
//	imagePullSecret         Warning: not applicable; the container engine uses its own
//	                        registry logins (docker login).
//	imagePullPolicy         PullPolicy: Always, IfNotPresent or Never (anything else is a
//	                        Parse error).
//	activeDeadlineSeconds   Timeout: the task's time limit (a JSON number or a string, as
//	                        proto3 JSON writes int64).
//	genericEphemeralVolume  EmptyDirs: a fresh empty directory at mountPath with size as
//	                        its limit; storage class, access modes and metadata do not
//	                        apply (said in the Mapped line).
//	emptyDirMounts          EmptyDirs: {MountPath, Medium ("" or Memory, i.e. tmpfs),
//	                        SizeLimit in bytes}. HugePages media: Warning, a plain
//	                        directory.
//	enabledSharedMemory     ShmSize: the /dev/shm size in bytes; an empty size keeps the
//	                        executor's default.
//	securityContext         Warning: not mapped; the step runs as the image's user
//	                        (Docker) or as the user running mlpipe (process).
//	initContainers          Warning: not mapped; init containers do not run.
//	(any other field)       Warning: unknown field, ignored.
//
// Sizes (sizeLimit, size) are Kubernetes quantities, parsed by
// [ParseQuantity]: "512Mi", "1.5Gi", "2G", "1e9", "500m".
//
// # Secrets and config maps
//
// A secret is looked up in Sources.SecretsDir in two forms:
//
//	<SecretsDir>/<name>/<key>   a directory with one file per key (the file's
//	                            content is the value, byte for byte)
//	<SecretsDir>/<name>.env     KEY=VALUE lines; blank lines and # comments are
//	                            skipped, "export " and one pair of surrounding
//	                            quotes are removed, nothing is expanded
//
// A key is taken from the directory when it has it, else from the env file.
// Config maps work the same way under Sources.ConfigMapsDir. Names and keys
// come from untrusted IR, so they must be single file names ([A-Za-z0-9._-],
// not starting with '.', at most 253 characters), and a symlink that leads
// out of the store (for a secret) or out of the secret's directory (for a
// key, or anywhere in a mounted directory) is refused. A secret file or
// directory readable by group or others gets a warning suggesting chmod
// 600 / 700. Values never appear in Mapped, Warnings or errors; only names,
// keys and paths do.
//
// # PVC tasks
//
// kubernetes.CreatePVC compiles to a task whose container image is
// argostub/createpvc; its inputs name the claim through pvc_name or
// pvc_name_suffix (the name is then <workflow name>-<suffix>), and its
// output parameter "name" is what later pvcMount entries reference through
// taskOutputParameter. DeletePVC (argostub/deletepvc) takes pvc_name. The
// engine creates and removes the named volume itself.
package platform
