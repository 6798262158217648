// What a recipe is: an image made of layers, each layer a set of Debian packages
// plus the few things their maintainer scripts would have done, and the image config.
// Everything here is plain data so that a recipe's build key can be a hash of it.

export interface User {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell?: string;
  gecos?: string;
}

export interface Group {
  name: string;
  gid: number;
  members?: string[];
}

/** A directory the image needs (a service's data dir, /run/<service>, ...). */
export interface Dir {
  path: string;
  mode?: number;
  /** User name (declared in this layer or a lower one) or numeric uid. */
  owner?: string | number;
  group?: string | number;
}

export interface File {
  path: string;
  /** The content itself, or `source`: a path relative to the recipe folder. */
  content?: string;
  source?: string;
  mode?: number;
  owner?: string | number;
  group?: string | number;
}

export interface Symlink {
  path: string;
  target: string;
}

export interface LayerSpec {
  /** Short name, shown in progress lines and in the image history. */
  name: string;
  /** Root packages; their dependencies come along unless a lower layer has them or `leaveOut` names them. */
  packages: string[];
  /**
   * Packages treated as already present and never unpacked: those only maintainer
   * scripts or an init system need (debconf, adduser, perl, ...). Applies to this
   * layer and every layer above it.
   */
  leaveOut?: string[];
  /** Globs (relative to /) removed after unpacking, on top of the default prune (docs, man pages, translations). */
  prune?: string[];
  users?: User[];
  groups?: Group[];
  dirs?: Dir[];
  files?: File[];
  symlinks?: Symlink[];
  /** Link every applet of /bin/busybox (as `busybox --list-full` names them) to it. */
  busyboxApplets?: boolean;
}

export interface Healthcheck {
  /** Docker's form: ["CMD", "redis-cli", "ping"] or ["CMD-SHELL", "..."]. */
  test: string[];
  intervalSeconds?: number;
  timeoutSeconds?: number;
  startPeriodSeconds?: number;
  retries?: number;
}

export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  /** Merged over the default PATH. */
  env?: Record<string, string>;
  user?: string;
  workingDir?: string;
  /** "6379/tcp" */
  exposedPorts?: string[];
  volumes?: string[];
  stopSignal?: string;
  healthcheck?: Healthcheck;
  labels?: Record<string, string>;
}

export interface Recipe {
  /** Image name: the layout lands in <out>/<name>. */
  name: string;
  /** Tag written as org.opencontainers.image.ref.name; "latest" unless given. */
  tag?: string;
  /** Lowest first. Layers shared by several recipes give the same blob in each. */
  layers: LayerSpec[];
  config: ImageConfig;
}

/** Identity function that gives recipe files type checking. */
export function defineRecipe(recipe: Recipe): Recipe {
  return recipe;
}
