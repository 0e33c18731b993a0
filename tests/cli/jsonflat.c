/*
 * pps-cli-json: checks that stdin holds one JSON document in the stable
 * form persipubsub-ctl promises (compact, keys sorted, one line), then
 * prints it flattened, one "PATH VALUE" line per scalar, in key order,
 * array indexes as path components (no brackets, which golden-file
 * patterns would take for character classes):
 *
 *   .queues.0.messages 3
 *
 * so that golden files can check the schema and the values. Exit 1 if the
 * input is not JSON or not in the stable form.
 */
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
flatten(const char *path, json_t *v)
{
    char sub[1024];
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child)
        {
            snprintf(sub, sizeof(sub), "%s.%s", path, key);
            flatten(sub, child);
        }
        /* json_object_foreach walks insertion order; the loader keeps the
         * document's order, which the stability check made sorted. */
        if (json_object_size(v) == 0) {
            printf("%s {}\n", path);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
        {
            snprintf(sub, sizeof(sub), "%s.%zu", path, i);
            flatten(sub, child);
        }
        if (json_array_size(v) == 0) {
            printf("%s []\n", path);
        }
    } else {
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
        printf("%s %s\n", path, text != NULL ? text : "?");
        free(text);
    }
}

int
main(void)
{
    size_t cap = 1 << 16, len = 0, n;
    char *in = malloc(cap + 1);
    while (in != NULL && (n = fread(in + len, 1, cap - len, stdin)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            char *bigger = realloc(in, cap + 1);
            if (bigger == NULL) {
                free(in);
            }
            in = bigger;
        }
    }
    if (in == NULL) {
        fprintf(stderr, "pps-cli-json: out of memory\n");
        return 1;
    }
    in[len] = '\0';
    json_error_t err;
    json_t *doc = json_loadb(in, len, JSON_REJECT_DUPLICATES, &err);
    if (doc == NULL) {
        fprintf(stderr, "pps-cli-json: line %d, column %d: %s\n", err.line,
                err.column, err.text);
        free(in);
        return 1;
    }
    char *canon = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS |
                                      JSON_REAL_PRECISION(15));
    int stable = canon != NULL && len == strlen(canon) + 1 &&
                 memcmp(in, canon, len - 1) == 0 && in[len - 1] == '\n';
    if (!stable) {
        fprintf(stderr,
                "pps-cli-json: not in the stable form (compact, "
                "sorted keys, one line):\n%s\n",
                canon != NULL ? canon : "?");
    } else {
        flatten("", doc);
    }
    free(canon);
    free(in);
    json_decref(doc);
    return stable ? 0 : 1;
}
