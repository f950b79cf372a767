/*
 * master_key.h
 *		The master keys that encrypt integration API keys.
 *
 * This module owns the master key file and every call into pgcrypto.  API
 * keys are stored only as pgp_sym_encrypt ciphertext under a master key;
 * each ciphertext records the id of the key that made it, so rotation can
 * add a new key, re-encrypt, and retire the old one without a moment where
 * a stored ciphertext has no key.
 */
#ifndef ANOMALI_MASTER_KEY_H
#define ANOMALI_MASTER_KEY_H

/* Encrypt a clear API key under the current master key */
extern bytea *master_key_encrypt(const char *clear, int *key_id);

/* Decrypt a stored API key; the result is palloc'd and must be wiped */
extern char *master_key_decrypt(bytea *ciphertext, int key_id);

/* Add a new master key and make it current; returns its id */
extern int	master_key_add(void);

/* Remove keys whose ids are not in keep[]; returns how many were removed */
extern int	master_key_purge(const int *keep, int nkeep);

#endif							/* ANOMALI_MASTER_KEY_H */
