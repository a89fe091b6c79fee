/* train.c: `shelf train`: fit one model on all the data and write its
 * bundle (manifest.json + tensors.safetensors). --bundle names the bundle,
 * or a directory of bundles (one that exists without a manifest.json, or a
 * path ending in '/'), which gets a new bundle MODEL-<UTC time>, with -2,
 * -3 ... when that name is taken (two trainings in one second). Where the
 * bundle goes is made (missing parents) and checked before the fit. */
#include "cli.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Creates path and its missing parents (mkdir -p): 0 or an errno. */
static int make_dirs(const char *path)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (char *q = p + 1;; q++) {
        if (*q && *q != '/') continue;
        const char end = *q;
        *q = '\0';
        struct stat sb;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return errno;
        if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) return ENOTDIR;
        if (!end) return 0;
        *q = end;
    }
}

/* Where the bundle of --bundle dir goes, checked before the fit: into
 * where[cap] the directory that takes a new entry (dir's parent, or dir
 * itself when *versioned: a directory of bundles). Creates what is
 * missing of it and tries a probe directory in it. 1 (said why) if the
 * bundle cannot be written there. */
static int bundle_target(cli_ctx *c, const char *dir, char *where, size_t cap, int *versioned)
{
    char man[4200];
    struct stat sb;
    snprintf(man, sizeof man, "%s/manifest.json", dir);
    if (stat(man, &sb) == 0)
        return cli_fail(c, "%s: a bundle is there (bundles are immutable: choose a new directory, or a directory "
                           "of bundles, which gets a new one)", dir);
    size_t n = strlen(dir);
    *versioned = dir[n - 1] == '/' || (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode));
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t cut = n; /* the bundle's parent: dir[0, cut) */
    while (cut > 0 && dir[cut - 1] != '/') cut--;
    if (*versioned) snprintf(where, cap, "%.*s", (int)n, dir);
    else if (!cut) snprintf(where, cap, ".");
    else snprintf(where, cap, "%.*s", cut == 1 ? 1 : (int)(cut - 1), dir);
    int e = make_dirs(where);
    if (e) return cli_fail(c, "%s: cannot create the bundle's directory: %s (nothing fitted)", where, strerror(e));
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.shelf-train-probe-%d", where, (int)getpid());
    if (mkdir(probe, 0755) != 0)
        return cli_fail(c, "%s: cannot write the bundle there: %s (nothing fitted)", where, strerror(errno));
    rmdir(probe);
    return 0;
}

/* Saves m as the bundle dir, or (versioned) as a new bundle of the
 * directory where named MODEL-<UTC time>[-k]; the path written in
 * path[cap]. */
static int save_bundle(const shelf_model *m, const char *dir, const char *where, int versioned, char *path,
                       size_t cap, shelf_err *err)
{
    if (!versioned) {
        snprintf(path, cap, "%s", dir);
        return shelf_model_save(m, path, err);
    }
    char stamp[32] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm)) strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    int rc = SHELF_EEXIST;
    for (int k = 1; k <= 1000 && rc == SHELF_EEXIST; k++) { /* EEXIST: the name is taken, also by a racing writer */
        if (k == 1) snprintf(path, cap, "%s/%s-%s", where, shelf_model_name(m), stamp);
        else snprintf(path, cap, "%s/%s-%s-%d", where, shelf_model_name(m), stamp, k);
        rc = shelf_model_save(m, path, err);
    }
    return rc;
}

int cmd_train(cli_ctx *c)
{
    if (c->n_pos) return cli_fail(c, "unexpected argument '%s'", c->pos[0]), 2;
    const char *name = shelf_config_str(c->cfg, "model");
    const char *dir = shelf_config_str(c->cfg, "bundle");
    if (!name || !dir || !dir[0]) return cli_fail(c, "--model and --bundle are required"), 2;
    shelf_model *m = NULL;
    shelf_err err = {0};
    if (shelf_model_new(name, &m, &err)) return cli_fail(c, "%s", err.msg), 2;
    char where[4096], path[4400];
    int versioned = 0;
    if (bundle_target(c, dir, where, sizeof where, &versioned)) {
        shelf_model_free(m);
        return 1;
    }
    int threads = cli_threads(c);
    shelf_snapshot *s = NULL;
    if (cli_load_snapshot(c, &s)) {
        shelf_model_free(m);
        return 1;
    }
    shelf_progress *p = shelf_progress_new(name, 0, c->progress);
    double t0 = shelf_now();
    int rc = shelf_model_fit(m, s, c->cfg, p);
    double fit_s = shelf_now() - t0;
    shelf_progress_finish(p);
    if (rc) cli_fail(c, "%s", shelf_model_errmsg(m));
    else if ((rc = save_bundle(m, dir, where, versioned, path, sizeof path, &err))) cli_fail(c, "%s", err.msg);
    else
        printf("%s: %s fitted on %u users, %u items, %llu events in %.2f s (%d threads)\n", path, name, s->n_users,
               s->n_items, (unsigned long long)s->n_events, fit_s, threads);
    shelf_model_free(m);
    shelf_snapshot_free(s);
    return rc ? 1 : 0;
}
