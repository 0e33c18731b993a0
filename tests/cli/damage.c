/*
 * pps-cli-damage: damages a queue on purpose, straight through LMDB, so
 * that the CLI tests can show `persipubsub-ctl check` finding it (layout in
 * docs/format.rst).
 *
 *   pps-cli-damage QUEUE_DIR delete-payload ID   delete ID from pps.data
 *   pps-cli-damage QUEUE_DIR add-pending SUB ID  put ID into sub:SUB
 */
#include <lmdb.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
fail(const char *what, int rc)
{
    fprintf(stderr, "pps-cli-damage: %s: %s\n", what, mdb_strerror(rc));
    return 1;
}

static int
parse_id(const char *text, uint64_t *id)
{
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (text[0] == '\0' || *end != '\0') {
        fprintf(stderr, "pps-cli-damage: %s: not a message id\n", text);
        return 0;
    }
    *id = (uint64_t)v;
    return 1;
}

int
main(int argc, char **argv)
{
    const char *db;
    char name[300];
    uint64_t id;
    if (argc == 4 && strcmp(argv[2], "delete-payload") == 0) {
        db = "pps.data";
        if (!parse_id(argv[3], &id)) {
            return 2;
        }
    } else if (argc == 5 && strcmp(argv[2], "add-pending") == 0) {
        snprintf(name, sizeof(name), "sub:%s", argv[3]);
        db = name;
        if (!parse_id(argv[4], &id)) {
            return 2;
        }
    } else {
        fprintf(stderr,
                "usage: pps-cli-damage QUEUE_DIR delete-payload ID\n"
                "       pps-cli-damage QUEUE_DIR add-pending SUB ID\n");
        return 2;
    }
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    if (rc != 0) {
        return fail("mdb_env_create", rc);
    }
    mdb_env_set_maxdbs(env, 16);
    rc = mdb_env_open(env, argv[1], MDB_WRITEMAP | MDB_NOTLS, 0600);
    if (rc != 0) {
        mdb_env_close(env);
        return fail(argv[1], rc);
    }
    rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc != 0) {
        mdb_env_close(env);
        return fail("mdb_txn_begin", rc);
    }
    rc = mdb_dbi_open(txn, db, MDB_INTEGERKEY, &dbi);
    MDB_val k = {sizeof(id), &id};
    MDB_val v = {0, NULL};
    if (rc == 0) {
        rc = db == name ? mdb_put(txn, dbi, &k, &v, 0)
                        : mdb_del(txn, dbi, &k, NULL);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        mdb_env_close(env);
        return fail(db, rc);
    }
    rc = mdb_txn_commit(txn);
    mdb_env_close(env);
    return rc != 0 ? fail("mdb_txn_commit", rc) : 0;
}
