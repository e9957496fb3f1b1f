/* store/migrations.h — the migration scripts compiled into the binary (cmake/embed_sql.cmake). */
#ifndef MC_STORE_MIGRATIONS_H
#define MC_STORE_MIGRATIONS_H

struct store_migration {
	const char *backend;   /* "sqlite", "postgres" */
	int number;            /* 1, 2, ... — in step across backends */
	const char *name;      /* "0001_core" */
	const char *sql;
};

extern const struct store_migration store_migrations[];  /* sorted by backend, then number */
extern const unsigned store_migrations_count;

#endif
